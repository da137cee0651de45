namespace Passage.Relay.Connect;

/// <summary>
/// The outcome of one <see cref="Http1ConnectParser.Parse(System.Buffers.ReadOnlySequence{byte}, Http1ParseLimits)"/> call. A value: no exception is ever used for what a
/// client sent.
/// </summary>
internal readonly struct Http1ParseResult
{
    private Http1ParseResult(Http1ParseStatus status, ConnectRequest? request, long headLength, RefusalReason? refusal, string? detail)
    {
        Status = status;
        Request = request;
        HeadLength = headLength;
        Refusal = refusal;
        Detail = detail;
    }

    /// <summary>What the parser concluded.</summary>
    public Http1ParseStatus Status { get; }

    /// <summary>When <see cref="Http1ParseStatus.Complete"/>: the request; null otherwise.</summary>
    public ConnectRequest? Request { get; }

    /// <summary>
    /// When <see cref="Http1ParseStatus.Complete"/>: the length of the request head, from the first byte up to and
    /// including the line end of the empty line that closes it. Bytes after it (a client may send its TLS
    /// ClientHello right behind the CONNECT) belong to the tunnel. For other statuses: how far the parser got
    /// before deciding, for diagnostics only.
    /// </summary>
    public long HeadLength { get; }

    /// <summary>
    /// When <see cref="Http1ParseStatus.Error"/>: why the request is refused, one of
    /// <see cref="RefusalReason.MalformedRequest"/>, <see cref="RefusalReason.MethodNotAllowed"/>,
    /// <see cref="RefusalReason.UnsupportedVersion"/> and <see cref="RefusalReason.HeadTooLarge"/>; null otherwise.
    /// </summary>
    public RefusalReason? Refusal { get; }

    /// <summary>
    /// When <see cref="Http1ParseStatus.Error"/>: a short, constant explanation (which rule failed). Never contains
    /// bytes the client sent, so it can be logged and sent back in a <c>Proxy-Status</c> details parameter.
    /// </summary>
    public string? Detail { get; }

    /// <summary>A result saying more bytes are needed.</summary>
    public static Http1ParseResult Incomplete(long examined) => new(Http1ParseStatus.Incomplete, null, examined, null, null);

    /// <summary>A result for a whole, valid CONNECT head of <paramref name="headLength"/> bytes.</summary>
    public static Http1ParseResult Complete(ConnectRequest request, long headLength) => new(Http1ParseStatus.Complete, request, headLength, null, null);

    /// <summary>A result refusing the request.</summary>
    public static Http1ParseResult Error(RefusalReason refusal, long examined, string detail) => new(Http1ParseStatus.Error, null, examined, refusal, detail);

    /// <inheritdoc />
    public override string ToString() => Status switch
    {
        Http1ParseStatus.Complete => $"Complete ({HeadLength} bytes): {Request}",
        Http1ParseStatus.Error => $"Error {Refusal} ({HeadLength} bytes): {Detail}",
        _ => $"Incomplete ({HeadLength} bytes)",
    };
}
