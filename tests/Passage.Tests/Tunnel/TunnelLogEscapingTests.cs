using System.Formats.Asn1;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Strings a peer chooses reach the log (the names in a certificate it presents, at Warning): a control character in
/// them is written escaped, so that no peer can end a line and forge the next one, or send escape sequences to the
/// terminal of whoever reads the log.
/// </summary>
public sealed class TunnelLogEscapingTests
{
    /// <summary>A DNS name (an IA5String, which takes any 7-bit byte) that would end the line and colour the terminal.</summary>
    private const string ForgedName = "evil.test\r\u001b[31m2026-01-01T00:00:00.000Z info: forged\nline";

    [Theory]
    [InlineData("text")]
    [InlineData("systemd")]
    [InlineData("json")]
    public async Task Control_characters_in_a_refused_peers_certificate_names_are_logged_escaped(string format)
    {
        await using var pair = await TunnelPair.StartAsync(waitUntilUp: true);
        await using var server = pair.StartEnd("server-logged.json", TunnelPair.ServerConfig(
            EndTrust.Pinned(pair.ClientId, pair.ServerKey), tunnelPort: 0, pair.Backend.Port, $$""" "log": { "format": "{{format}}" } """));
        var port = await server.WaitForListeningPortAsync();

        using var certificate = CertificateNamed(ForgedName);
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync("127.0.0.1", port).WaitAsync(Timeouts.Default);
            await using var tls = new SslStream(tcp.GetStream());
            try
            {
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "passage",
                    ClientCertificates = [certificate],
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                }).WaitAsync(Timeouts.Default);
                // TLS 1.3: the server end judges this end's certificate after its side of the handshake; a read sees it close.
                await tls.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default);
            }
            catch (Exception e) when (e is IOException or AuthenticationException)
            {
                // Refused: as expected.
            }
        }

        var line = await server.WaitForLineAsync(l => l.Contains("refused a peer presenting", StringComparison.Ordinal));
        var escaped = @"evil.test\x0D\x1B[31m2026-01-01T00:00:00.000Z info: forged\x0Aline";
        // The json format writes the message as a JSON string, which doubles each backslash.
        Assert.Contains(format == "json" ? escaped.Replace(@"\", @"\\", StringComparison.Ordinal) : escaped, line);
        Assert.DoesNotContain('\u001b', server.StandardError);
    }

    /// <summary>A self-signed client certificate whose subject alternative name is the DNS name <paramref name="name"/>, unchecked.</summary>
    private static X509Certificate2 CertificateNamed(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=stranger", key, HashAlgorithmName.SHA256);
        var names = new AsnWriter(AsnEncodingRules.DER);
        using (names.PushSequence())
        {
            names.WriteCharacterString(UniversalTagNumber.IA5String, name, new Asn1Tag(TagClass.ContextSpecific, 2));
        }
        request.CertificateExtensions.Add(new X509Extension("2.5.29.17", names.Encode(), critical: false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var created = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        // With its key exportable from a PFX: the TLS stack takes the key from there.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
    }
}
