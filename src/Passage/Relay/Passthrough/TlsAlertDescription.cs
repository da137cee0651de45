namespace Passage.Relay.Passthrough;

/// <summary>AlertDescription values the pass-through relay may send (RFC 8446 §6).</summary>
internal enum TlsAlertDescription : byte
{
    /// <summary>unexpected_message (10): a message arrived where it is not allowed.</summary>
    UnexpectedMessage = 10,

    /// <summary>record_overflow (22): a record longer than the record layer allows (RFC 8446 §5.1).</summary>
    RecordOverflow = 22,

    /// <summary>handshake_failure (40): no acceptable set of parameters; used when no route exists.</summary>
    HandshakeFailure = 40,

    /// <summary>illegal_parameter (47): a field was out of range or inconsistent with other fields.</summary>
    IllegalParameter = 47,

    /// <summary>decode_error (50): a message could not be parsed (RFC 8446 §6.2).</summary>
    DecodeError = 50,

    /// <summary>protocol_version (70): the client's protocol version is not supported.</summary>
    ProtocolVersion = 70,

    /// <summary>internal_error (80): a failure unrelated to the peer, such as the upstream being unreachable.</summary>
    InternalError = 80,

    /// <summary>unrecognized_name (112): no route for the SNI host name (RFC 6066 §3).</summary>
    UnrecognizedName = 112,
}
