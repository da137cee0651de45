namespace Passage.Relay.Passthrough;

/// <summary>
/// The outcome of one <see cref="ClientHelloParser.Parse"/> call. A value: no exception is ever used for what a
/// client sent.
/// </summary>
internal readonly struct ClientHelloResult
{
    private ClientHelloResult(
        ClientHelloStatus status, long bytesExamined, string? serverName, IReadOnlyList<string>? applicationProtocols, string? detail,
        TlsAlertDescription alert = TlsAlertDescription.DecodeError)
    {
        Status = status;
        Alert = alert;
        BytesExamined = bytesExamined;
        ServerName = serverName;
        ApplicationProtocols = applicationProtocols ?? [];
        Detail = detail;
    }

    /// <summary>What the parser concluded.</summary>
    public ClientHelloStatus Status { get; }

    /// <summary>
    /// When <see cref="ClientHelloStatus.Complete"/>: the SNI host name (RFC 6066 §3) in lower case without a
    /// trailing dot, or null when the hello had no usable host_name (no extension, or an IP literal, which the
    /// RFC forbids and which is ignored). Always null for the other statuses.
    /// </summary>
    public string? ServerName { get; }

    /// <summary>
    /// When <see cref="ClientHelloStatus.Complete"/>: the ALPN protocol names the client offered (RFC 7301 §3.1),
    /// in its order, each byte mapped to one Latin-1 character; empty when it offered none. Always empty otherwise.
    /// </summary>
    public IReadOnlyList<string> ApplicationProtocols { get; }

    /// <summary>
    /// When <see cref="ClientHelloStatus.Complete"/>: the number of bytes, from the start of the buffer, of the
    /// records that held the ClientHello. Bytes after them belong to the rest of the connection. For other
    /// statuses: how far the parser got before deciding, for diagnostics only.
    /// </summary>
    public long BytesExamined { get; }

    /// <summary>
    /// When <see cref="ClientHelloStatus.Malformed"/>: the fatal alert a TLS server would answer with (RFC 8446 §5.1,
    /// §6.2): record_overflow for a record over 2^14 bytes, unexpected_message for a message or record out of place,
    /// decode_error for anything that does not parse. Meaningless for the other statuses.
    /// </summary>
    public TlsAlertDescription Alert { get; }

    /// <summary>
    /// A short, constant explanation for logs (which rule failed, or why a name was ignored). Never contains
    /// bytes the client sent, so it can be logged without revealing a destination. Null when there is nothing
    /// to add.
    /// </summary>
    public string? Detail { get; }

    /// <summary>A result saying more bytes are needed.</summary>
    public static ClientHelloResult Incomplete(long bytesExamined) => new(ClientHelloStatus.Incomplete, bytesExamined, null, null, null);

    /// <summary>A result saying the bytes are not TLS.</summary>
    public static ClientHelloResult NotTls(long bytesExamined, string detail) => new(ClientHelloStatus.NotTls, bytesExamined, null, null, detail);

    /// <summary>A result saying the bytes break a TLS rule, to be answered with <paramref name="alert"/>.</summary>
    public static ClientHelloResult Malformed(long bytesExamined, string detail, TlsAlertDescription alert = TlsAlertDescription.DecodeError) =>
        new(ClientHelloStatus.Malformed, bytesExamined, null, null, detail, alert);

    /// <summary>A result saying the announced ClientHello exceeds the caller's bound.</summary>
    public static ClientHelloResult TooLarge(long bytesExamined, string detail) => new(ClientHelloStatus.TooLarge, bytesExamined, null, null, detail);

    /// <summary>A result for a whole, well-formed ClientHello.</summary>
    public static ClientHelloResult Complete(long bytesExamined, string? serverName, IReadOnlyList<string>? applicationProtocols, string? detail) =>
        new(ClientHelloStatus.Complete, bytesExamined, serverName, applicationProtocols, detail);

    /// <inheritdoc />
    public override string ToString() => Detail is null ? $"{Status} ({BytesExamined} bytes)" : $"{Status} ({BytesExamined} bytes): {Detail}";
}
