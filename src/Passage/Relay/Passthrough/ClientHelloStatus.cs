namespace Passage.Relay.Passthrough;

/// <summary>What <see cref="ClientHelloParser.Parse"/> concluded about the bytes a client has sent so far.</summary>
internal enum ClientHelloStatus
{
    /// <summary>
    /// Everything read so far is a consistent prefix of a TLS ClientHello, but the message is not complete yet.
    /// Read more bytes and parse again; a truncated hello is never reported as <see cref="Malformed"/>.
    /// </summary>
    Incomplete,

    /// <summary>
    /// A whole, well-formed ClientHello was read. <see cref="ClientHelloResult.ServerName"/> holds its SNI host
    /// name, or null when the hello carried none, and <see cref="ClientHelloResult.BytesExamined"/> says how many
    /// bytes the records holding it took up.
    /// </summary>
    Complete,

    /// <summary>
    /// The connection does not start with a TLS handshake record (for example an HTTP request or an SSLv2-style
    /// hello). Decided from the first one or two bytes, without waiting for more.
    /// </summary>
    NotTls,

    /// <summary>
    /// The bytes start like TLS but break a rule of the record layer (RFC 8446 §5.1) or of the ClientHello
    /// (RFC 8446 §4.1.2, RFC 6066 §3): inconsistent lengths, a foreign record inside the hello, a bad host name.
    /// More bytes would not fix it.
    /// </summary>
    Malformed,

    /// <summary>
    /// The handshake header announces a ClientHello longer than the caller's bound. Reported as soon as the
    /// header is read, before the body arrives.
    /// </summary>
    TooLarge,
}
