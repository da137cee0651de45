namespace Passage.Relay.Connect;

/// <summary>
/// Bounds on an HTTP/1.1 request head read by <see cref="Http1ConnectParser"/>. Passage tunables, not protocol
/// limits: RFC 9112 sets none, and RFC 6585 §5 gives 431 for heads a server will not take.
/// </summary>
internal sealed record Http1ParseLimits
{
    /// <summary>The default <see cref="MaxHeadBytes"/>: 8 KiB, the common front-end default (nginx, HAProxy buffers).</summary>
    public const int DefaultMaxHeadBytes = 8 * 1024;

    /// <summary>The default <see cref="MaxHeaderCount"/>: 64 fields; curl sends 3 with a CONNECT, browsers fewer than 10.</summary>
    public const int DefaultMaxHeaderCount = 64;

    /// <summary>The defaults.</summary>
    public static Http1ParseLimits Default { get; } = new();

    /// <summary>
    /// The longest request head accepted, in bytes, from the first byte up to and including the empty line that
    /// ends it. More buffered bytes than this without that empty line are refused with 431 at once. Default
    /// <see cref="DefaultMaxHeadBytes"/>; at least 1.
    /// </summary>
    public int MaxHeadBytes { get; init; } = DefaultMaxHeadBytes;

    /// <summary>
    /// The most header field lines accepted; one more is refused with 431 as soon as its line is read. Default
    /// <see cref="DefaultMaxHeaderCount"/>; 0 or more.
    /// </summary>
    public int MaxHeaderCount { get; init; } = DefaultMaxHeaderCount;
}
