using Passage.Identity;

namespace Passage.Client;

/// <summary>How a <see cref="PassageClient"/> reaches its relays.</summary>
public sealed record PassageClientOptions
{
    /// <summary>The relays, each pinned by node ID (<c>ID@host:port</c>), in failover order.</summary>
    public IReadOnlyList<PeerAddress> Relays { get; init; } = Array.Empty<PeerAddress>();

    /// <summary>
    /// A bearer token for relays that require one: token68 (RFC 9110 §11.2: letters, digits, <c>-._~+/</c>, then any
    /// <c>=</c>), at most 1024 characters, as relays take them. Default none.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>What is wrong with a <see cref="Token"/> that is not one a relay can take (the token itself not shown).</summary>
    internal const string TokenProblem = "not a token a relay can take: token68 (letters, digits, - . _ ~ + /, then any '='), at most 1024 characters (the value is not shown)";

    /// <summary>
    /// The key this client presents to relays that ask for one (mutual TLS: a relay started with <c>--client-id</c> serves
    /// only the node IDs it lists). Default none: a client without one presents no certificate, and relays cannot tell it
    /// apart by a key (one presented to several relays is the same ID at each). The caller keeps it undisposed while the
    /// client runs.
    /// </summary>
    public NodeIdentity? Identity { get; init; }

    /// <summary>Time to reach a relay (TCP and TLS). Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Time for a relay to answer a tunnel request once it is sent. A relay answers within its own connect timeout
    /// (10 s unless its operator changed it); one that does not is treated as failing, and the next relay is tried.
    /// Default 30 s; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.
    /// </summary>
    public TimeSpan AnswerTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a healthy relay's round trip is measured. Default 5 s.</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromSeconds(5);
}
