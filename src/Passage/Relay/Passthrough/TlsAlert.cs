namespace Passage.Relay.Passthrough;

/// <summary>
/// Plaintext fatal alert records the relay sends before closing a connection it will not forward. The relay
/// never terminates TLS, so at that point no keys exist and the alert goes in clear, as in RFC 8446 §6.
/// </summary>
internal static class TlsAlert
{
    /// <summary>AlertLevel fatal (RFC 8446 §6; TLS 1.3 treats every alert but close_notify and user_canceled as fatal).</summary>
    private const byte LevelFatal = 2;

    /// <summary>A record is the 5-byte header (RFC 8446 §5.1) plus level and description (RFC 8446 §6).</summary>
    private const int RecordLength = TlsWire.RecordHeaderLength + 2;

    private static readonly byte[] UnrecognizedNameRecord = Build(TlsAlertDescription.UnrecognizedName);
    private static readonly byte[] HandshakeFailureRecord = Build(TlsAlertDescription.HandshakeFailure);
    private static readonly byte[] DecodeErrorRecord = Build(TlsAlertDescription.DecodeError);
    private static readonly byte[] InternalErrorRecord = Build(TlsAlertDescription.InternalError);
    private static readonly byte[] ProtocolVersionRecord = Build(TlsAlertDescription.ProtocolVersion);

    /// <summary>Fatal unrecognized_name (112): no route for the requested host name.</summary>
    public static ReadOnlyMemory<byte> UnrecognizedName => UnrecognizedNameRecord;

    /// <summary>Fatal handshake_failure (40).</summary>
    public static ReadOnlyMemory<byte> HandshakeFailure => HandshakeFailureRecord;

    /// <summary>Fatal decode_error (50): the ClientHello could not be parsed.</summary>
    public static ReadOnlyMemory<byte> DecodeError => DecodeErrorRecord;

    /// <summary>Fatal internal_error (80).</summary>
    public static ReadOnlyMemory<byte> InternalError => InternalErrorRecord;

    /// <summary>Fatal protocol_version (70).</summary>
    public static ReadOnlyMemory<byte> ProtocolVersion => ProtocolVersionRecord;

    /// <summary>
    /// The 7 bytes of a fatal alert record with <paramref name="description"/>: content type alert (21),
    /// legacy_record_version 0x0303, length 2, level fatal (2), description. Cached for the common descriptions;
    /// the returned memory must not be written to.
    /// </summary>
    public static ReadOnlyMemory<byte> Fatal(TlsAlertDescription description) => description switch
    {
        TlsAlertDescription.UnrecognizedName => UnrecognizedNameRecord,
        TlsAlertDescription.HandshakeFailure => HandshakeFailureRecord,
        TlsAlertDescription.DecodeError => DecodeErrorRecord,
        TlsAlertDescription.InternalError => InternalErrorRecord,
        TlsAlertDescription.ProtocolVersion => ProtocolVersionRecord,
        _ => Build(description),
    };

    private static byte[] Build(TlsAlertDescription description) =>
    [
        TlsWire.ContentTypeAlert,
        TlsWire.LegacyRecordVersion >> 8,
        TlsWire.LegacyRecordVersion & 0xFF,
        0,
        RecordLength - TlsWire.RecordHeaderLength,
        LevelFatal,
        (byte)description,
    ];
}
