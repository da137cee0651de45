namespace Passage.Relay.Passthrough;

/// <summary>
/// Constants fixed by the TLS specifications, kept apart from Passage's own tunables. Each names its source.
/// </summary>
internal static class TlsWire
{
    /// <summary>ContentType change_cipher_spec (RFC 8446 §5.1).</summary>
    public const byte ContentTypeChangeCipherSpec = 20;

    /// <summary>ContentType alert (RFC 8446 §5.1).</summary>
    public const byte ContentTypeAlert = 21;

    /// <summary>ContentType handshake (RFC 8446 §5.1).</summary>
    public const byte ContentTypeHandshake = 22;

    /// <summary>Major byte of every TLS ProtocolVersion, 1.0 to 1.3 (RFC 5246 Appendix E, RFC 8446 §5.1).</summary>
    public const byte VersionMajor = 3;

    /// <summary>legacy_record_version written by TLS 1.3 on every record but an initial ClientHello (RFC 8446 §5.1).</summary>
    public const ushort LegacyRecordVersion = 0x0303;

    /// <summary>type(1) + legacy_record_version(2) + length(2) of a TLSPlaintext record (RFC 8446 §5.1).</summary>
    public const int RecordHeaderLength = 5;

    /// <summary>The largest TLSPlaintext.length: 2^14 (RFC 8446 §5.1).</summary>
    public const int MaxPlaintextLength = 1 << 14;

    /// <summary>HandshakeType client_hello (RFC 8446 §4).</summary>
    public const byte HandshakeTypeClientHello = 1;

    /// <summary>msg_type(1) + uint24 length of a Handshake message (RFC 8446 §4).</summary>
    public const int HandshakeHeaderLength = 4;

    /// <summary>Length of ClientHello.random (RFC 8446 §4.1.2).</summary>
    public const int RandomLength = 32;

    /// <summary>Upper bound of legacy_session_id&lt;0..32&gt; (RFC 8446 §4.1.2).</summary>
    public const int MaxSessionIdLength = 32;

    /// <summary>
    /// The shortest ClientHello body: version(2), random(32), empty session id(1), one cipher suite(2+2),
    /// one compression method(1+1), no extensions (RFC 5246 §7.4.1.2 allows none).
    /// </summary>
    public const int MinClientHelloBodyLength = 2 + RandomLength + 1 + 2 + 2 + 1 + 1;

    /// <summary>ExtensionType server_name (RFC 6066 §3, RFC 8446 §4.2).</summary>
    public const ushort ExtensionServerName = 0;

    /// <summary>ExtensionType application_layer_protocol_negotiation (RFC 7301 §3.1).</summary>
    public const ushort ExtensionApplicationLayerProtocolNegotiation = 16;

    /// <summary>NameType host_name (RFC 6066 §3).</summary>
    public const byte NameTypeHostName = 0;

    /// <summary>Longest DNS name in text form without the trailing dot (RFC 1035 §2.3.4: 255 octets on the wire).</summary>
    public const int MaxHostNameLength = 253;

    /// <summary>Longest DNS label (RFC 1035 §2.3.4).</summary>
    public const int MaxLabelLength = 63;
}
