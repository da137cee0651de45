using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Identity;

/// <summary>
/// Real TLS 1.3 handshakes on loopback between two node identities, each side pinning the
/// other by node ID (mutual authentication), with fresh and with saved-and-loaded identities.
/// </summary>
public sealed class PinnedTlsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task MutualHandshakeSucceedsWhenBothPinsMatch()
    {
        using var server = NodeIdentity.Create(["localhost", "127.0.0.1"]);
        using var client = NodeIdentity.Create();

        var (clientError, serverError, seenByServer) = await HandshakeAsync(server, client, server.NodeId, client.NodeId);

        Assert.Null(clientError);
        Assert.Null(serverError);
        Assert.Equal(client.NodeId, seenByServer);
    }

    [Fact]
    public async Task MutualHandshakeSucceedsWithIdentitiesLoadedFromFiles()
    {
        using var directory = new TemporaryDirectory();
        using (var created = NodeIdentity.Create())
        {
            created.Save(directory.File("server.pem"), overwrite: false);
        }
        using (var created = NodeIdentity.Create())
        {
            created.Save(directory.File("client.pem"), overwrite: false);
        }
        using var server = NodeIdentity.Load(directory.File("server.pem"));
        using var client = NodeIdentity.Load(directory.File("client.pem"));

        var (clientError, serverError, seenByServer) = await HandshakeAsync(server, client, server.NodeId, client.NodeId);

        Assert.Null(clientError);
        Assert.Null(serverError);
        Assert.Equal(client.NodeId, seenByServer);
    }

    [Fact]
    public async Task ClientRefusesServerWithWrongPin()
    {
        using var server = NodeIdentity.Create();
        using var client = NodeIdentity.Create();
        using var impostor = NodeIdentity.Create();

        var (clientError, _, _) = await HandshakeAsync(server, client, expectedServer: impostor.NodeId, expectedClient: client.NodeId);

        Assert.IsType<AuthenticationException>(clientError);
    }

    [Fact]
    public async Task ServerRefusesClientWithWrongPin()
    {
        using var server = NodeIdentity.Create();
        using var client = NodeIdentity.Create();
        using var impostor = NodeIdentity.Create();

        var (_, serverError, _) = await HandshakeAsync(server, client, expectedServer: server.NodeId, expectedClient: impostor.NodeId);

        Assert.IsType<AuthenticationException>(serverError);
    }

    /// <summary>
    /// Runs both ends of one handshake. Each side's error (null on success) is returned rather
    /// than thrown, so a test can say which side refused.
    /// </summary>
    private static async Task<(Exception? Client, Exception? Server, NodeId? ClientSeenByServer)> HandshakeAsync(
        NodeIdentity server, NodeIdentity client, NodeId expectedServer, NodeId expectedClient)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var timeout = new CancellationTokenSource(Timeout);

        var serverSide = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptTcpClientAsync(timeout.Token);
            await using var tls = new SslStream(accepted.GetStream());
            try
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = server.Certificate,
                    ClientCertificateRequired = true,
                    EnabledSslProtocols = SslProtocols.Tls13,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    RemoteCertificateValidationCallback = CertificatePin.CreateValidationCallback(expectedClient),
                }, timeout.Token);
                await ExchangeAsync(tls, timeout.Token);
                return ((Exception?)null, (NodeId?)NodeId.FromCertificate(new X509Certificate2(tls.RemoteCertificate!)));
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                return (e, null);
            }
        });

        var clientSide = Task.Run(async () =>
        {
            using var connection = new TcpClient();
            await connection.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            await using var tls = new SslStream(connection.GetStream());
            try
            {
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    ClientCertificates = new X509CertificateCollection { client.Certificate },
                    EnabledSslProtocols = SslProtocols.Tls13,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    RemoteCertificateValidationCallback = CertificatePin.CreateValidationCallback(expectedServer),
                }, timeout.Token);
                await ExchangeAsync(tls, timeout.Token);
                return (Exception?)null;
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                return e;
            }
        });

        var clientError = await clientSide.WaitAsync(Timeout);
        var (serverError, seen) = await serverSide.WaitAsync(Timeout);
        return (clientError, serverError, seen);
    }

    /// <summary>
    /// One byte each way: in TLS 1.3 the server learns of a refused client certificate only after
    /// the client has finished, so data must flow for both sides to see the outcome.
    /// </summary>
    private static async Task ExchangeAsync(SslStream tls, CancellationToken cancellationToken)
    {
        await tls.WriteAsync(new byte[] { 42 }, cancellationToken);
        await tls.FlushAsync(cancellationToken);
        var buffer = new byte[1];
        var read = await tls.ReadAsync(buffer, cancellationToken);
        if (read != 1 || buffer[0] != 42)
        {
            throw new IOException("The peer closed the connection instead of answering.");
        }
    }
}
