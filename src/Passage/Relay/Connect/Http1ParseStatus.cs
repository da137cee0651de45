namespace Passage.Relay.Connect;

/// <summary>What <see cref="Http1ConnectParser.Parse(System.Buffers.ReadOnlySequence{byte}, Http1ParseLimits)"/> concluded about the bytes a client has sent so far.</summary>
internal enum Http1ParseStatus
{
    /// <summary>
    /// Everything read so far could still begin a valid CONNECT request head, within the limits. Read more bytes
    /// and parse again from the start.
    /// </summary>
    Incomplete,

    /// <summary>
    /// A whole, valid CONNECT request head was read: <see cref="Http1ParseResult.Request"/> holds it and
    /// <see cref="Http1ParseResult.HeadLength"/> says where the tunnel's bytes begin.
    /// </summary>
    Complete,

    /// <summary>
    /// The request is refused: <see cref="Http1ParseResult.Refusal"/> says why (and so which status to answer).
    /// More bytes would not change the verdict.
    /// </summary>
    Error,
}
