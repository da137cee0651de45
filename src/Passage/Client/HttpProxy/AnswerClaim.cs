namespace Passage.Client.HttpProxy;

/// <summary>
/// Who gives the application the final answer to one forwarded request, decided once between the two directions of its
/// pump: the origin (its final head, or this proxy's 502 in its stead), or this proxy refusing the request (its body's
/// framing broke before the origin had answered). Interim (1xx) answers need no claim: a final one may follow either way.
/// </summary>
internal sealed class AnswerClaim
{
    private const int Nobody = 0;
    private const int Origin = 1;
    private const int Refusal = 2;

    private int _by;

    /// <summary>True while the request has not been refused: the origin's final answer (or the 502 for it) goes on.</summary>
    public bool ForOrigin() => Interlocked.CompareExchange(ref _by, Origin, Nobody) != Refusal;

    /// <summary>True when the application has not had the start of a final answer yet: it gets the refusal.</summary>
    public bool ForRefusal() => Interlocked.CompareExchange(ref _by, Refusal, Nobody) != Origin;

    /// <summary>True once the request is refused.</summary>
    public bool Refused => Volatile.Read(ref _by) == Refusal;
}
