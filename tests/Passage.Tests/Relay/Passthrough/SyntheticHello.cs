using System.Text;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>Hand-built, deterministic ClientHellos for the cases real clients never send.</summary>
internal static class SyntheticHello
{
    /// <summary>TLS_AES_128_GCM_SHA256 and TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.</summary>
    private static readonly byte[] DefaultSuites = [0x13, 0x01, 0xC0, 0x2B];

    /// <summary>A ClientHello body (RFC 8446 §4.1.2); <paramref name="extensions"/> null leaves the block out.</summary>
    public static byte[] Body(IEnumerable<(ushort Type, byte[] Data)>? extensions, byte[]? sessionId = null, byte[]? cipherSuites = null, byte[]? compression = null)
    {
        var body = new List<byte> { 3, 3 };
        body.AddRange(Enumerable.Range(0, 32).Select(i => (byte)(0xA0 + i)));
        sessionId ??= [];
        body.Add((byte)sessionId.Length);
        body.AddRange(sessionId);
        cipherSuites ??= DefaultSuites;
        body.AddRange(U16(cipherSuites.Length));
        body.AddRange(cipherSuites);
        compression ??= [0];
        body.Add((byte)compression.Length);
        body.AddRange(compression);
        if (extensions is not null)
        {
            var block = new List<byte>();
            foreach (var (type, data) in extensions)
            {
                block.AddRange(U16(type));
                block.AddRange(U16(data.Length));
                block.AddRange(data);
            }

            body.AddRange(U16(block.Count));
            body.AddRange(block);
        }

        return [.. body];
    }

    /// <summary>The handshake message: type client_hello, uint24 length, body.</summary>
    public static byte[] Handshake(byte[] body) => [1, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];

    /// <summary>The body in one handshake record (or several if it exceeds 2^14).</summary>
    public static byte[] Records(byte[] body) => TlsRecords.Wrap(Handshake(body), [1 << 14]);

    /// <summary>A one-record hello with the given extensions.</summary>
    public static byte[] WithExtensions(params (ushort Type, byte[] Data)[] extensions) => Records(Body(extensions));

    /// <summary>A one-record hello whose SNI is <paramref name="host"/> (ASCII bytes of the string, as given).</summary>
    public static byte[] WithServerName(string host) => WithExtensions(ServerName(host), SupportedVersions());

    /// <summary>server_name with one host_name entry.</summary>
    public static (ushort Type, byte[] Data) ServerName(string host) => ServerNameList((0, Encoding.Latin1.GetBytes(host)));

    /// <summary>server_name with arbitrary (name_type, name) entries.</summary>
    public static (ushort Type, byte[] Data) ServerNameList(params (byte NameType, byte[] Name)[] entries)
    {
        var list = new List<byte>();
        foreach (var (nameType, name) in entries)
        {
            list.Add(nameType);
            list.AddRange(U16(name.Length));
            list.AddRange(name);
        }

        return (0, [.. U16(list.Count), .. list]);
    }

    /// <summary>application_layer_protocol_negotiation (RFC 7301 §3.1).</summary>
    public static (ushort Type, byte[] Data) Alpn(params string[] protocols)
    {
        var list = new List<byte>();
        foreach (var protocol in protocols)
        {
            var bytes = Encoding.Latin1.GetBytes(protocol);
            list.Add((byte)bytes.Length);
            list.AddRange(bytes);
        }

        return (16, [.. U16(list.Count), .. list]);
    }

    /// <summary>supported_versions offering TLS 1.3 and 1.2 (RFC 8446 §4.2.1).</summary>
    public static (ushort Type, byte[] Data) SupportedVersions() => (43, [4, 3, 4, 3, 3]);

    public static byte[] U16(int value) => [(byte)(value >> 8), (byte)value];
}
