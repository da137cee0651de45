using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A local HTTPS origin (Kestrel) for a made-up name, with a generated certificate whose PEM is
/// written to a file for <c>curl --cacert</c>. It answers every request with the address it was
/// reached from, so tests can tell who connected.
/// </summary>
internal sealed class TestOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _directory;

    private TestOrigin(WebApplication app, X509Certificate2 certificate, string directory)
    {
        _app = app;
        Certificate = certificate;
        _directory = directory;
        CertificatePath = Path.Combine(directory, "origin.crt");
        File.WriteAllText(CertificatePath, certificate.ExportCertificatePem());
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The origin's certificate (PEM), for curl's --cacert.</summary>
    public string CertificatePath { get; }

    public int Port { get; private set; }

    /// <summary>Starts an origin for <paramref name="hostName"/> on 127.0.0.1 with a port from the OS.</summary>
    public static async Task<TestOrigin> StartAsync(string hostName = "origin.test")
    {
        var certificate = CreateCertificate(hostName);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(certificate);
            }));
        var app = builder.Build();
        app.Run(context => context.Response.WriteAsync($"origin {hostName} saw remote={context.Connection.RemoteIpAddress}\n"));
        var directory = Directory.CreateTempSubdirectory("passage-origin-").FullName;
        var origin = new TestOrigin(app, certificate, directory);
        await app.StartAsync().WaitAsync(Timeouts.Default);
        origin.Port = new Uri(app.Urls.First()).Port;
        return origin;
    }

    /// <summary>A self-signed ECDSA P-256 server certificate for <paramref name="hostName"/>.</summary>
    public static X509Certificate2 CreateCertificate(string hostName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={hostName}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(hostName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        // Re-import through PKCS#12 so the private key is usable by TLS on every platform.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(Timeouts.Default);
        await _app.DisposeAsync();
        Certificate.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
