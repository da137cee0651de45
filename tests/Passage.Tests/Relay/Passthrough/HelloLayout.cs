namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// Offsets of the length fields in a ClientHello held in one record, found by walking RFC 8446 §4.1.2
/// independently of the parser, so tests can corrupt each one.
/// </summary>
internal sealed class HelloLayout
{
    public const int RecordLength = 3;
    public const int HandshakeLength = 6;
    public const int SessionIdLength = 5 + 4 + 2 + 32;

    public HelloLayout(byte[] hello)
    {
        CipherSuitesLength = SessionIdLength + 1 + hello[SessionIdLength];
        CompressionLength = CipherSuitesLength + 2 + TlsRecords.Field(hello, CipherSuitesLength, 2);
        ExtensionsLength = CompressionLength + 1 + hello[CompressionLength];
        int offset = ExtensionsLength + 2;
        while (offset < hello.Length)
        {
            int type = TlsRecords.Field(hello, offset, 2);
            int length = TlsRecords.Field(hello, offset + 2, 2);
            if (type == 0)
            {
                ServerNameExtensionLength = offset + 2;
                ServerNameListLength = offset + 4;
                HostNameLength = offset + 4 + 2 + 1;
                ServerNameIsLastExtension = offset + 4 + length == hello.Length;
            }

            offset += 4 + length;
        }
    }

    public int CipherSuitesLength { get; }

    public int CompressionLength { get; }

    public int ExtensionsLength { get; }

    /// <summary>Offset of the server_name extension's length field, or -1 when there is none.</summary>
    public int ServerNameExtensionLength { get; } = -1;

    public int ServerNameListLength { get; } = -1;

    /// <summary>Offset of the first ServerName entry's length (assumed host_name, as every client sends).</summary>
    public int HostNameLength { get; } = -1;

    public bool ServerNameIsLastExtension { get; }
}
