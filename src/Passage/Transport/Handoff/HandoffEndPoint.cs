using System.Net;

namespace Passage.Transport.Handoff;

/// <summary>
/// A Kestrel endpoint that binds nothing: connections arrive through <see cref="HandoffListener.Hand"/>
/// after Passage accepted them (and, usually, terminated TLS) itself.
/// </summary>
/// <param name="name">A name for logs.</param>
internal sealed class HandoffEndPoint(string name) : EndPoint
{
    public string Name { get; } = name;

    public override string ToString() => $"handoff:{Name}";
}
