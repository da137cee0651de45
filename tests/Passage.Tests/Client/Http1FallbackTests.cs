using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Client;

/// <summary>A relay without HTTP/2: the client falls back to HTTP/1.1 CONNECT over a pinned TLS connection.</summary>
public sealed class Http1FallbackTests
{
    /// <summary>
    /// Also when the relay sends interim answers before its 200 (RFC 9110 §15.2: a client must be able to read them):
    /// here two in one write, so that the second is read from what came behind the first. The first used to be read
    /// as the relay's answer: a failed tunnel.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")]
    public async Task A_relay_that_offers_only_http1_still_carries_tunnels(string? interim)
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var heads = new List<string>();
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, heads, before200: interim is null ? null : Encoding.ASCII.GetBytes(interim));

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        for (var i = 0; i < 2; i++)
        {
            await using var tunnel = await client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default);
            await EchoServer.AssertEchoesAsync(tunnel, "hello"u8.ToArray());
        }
        lock (heads)
        {
            Assert.Equal(2, heads.Count);
            Assert.All(heads, h => Assert.StartsWith($"CONNECT origin.test:{echo.Port} HTTP/1.1\r\n", h));
        }
        Assert.True(client.Status.Single().IsUp);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A relay without HTTP/2 that serves only one client's key (mutual TLS): the client presents its own over HTTP/1.1
    /// CONNECT as over HTTP/2.
    /// </summary>
    [Fact]
    public async Task A_relay_without_http2_serving_only_this_clients_key_carries_its_tunnels()
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var clientIdentity = NodeIdentity.Create();
        using var listener = Listen();
        var heads = new List<string>();
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, heads, clientId: clientIdentity.NodeId);

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            Identity = clientIdentity,
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        await using (var tunnel = await client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default))
        {
            await EchoServer.AssertEchoesAsync(tunnel, "hello"u8.ToArray());
        }
        lock (heads)
        {
            Assert.Single(heads);
        }
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// Such a relay ends the connection of a client that presents no key, or another, once the client's side of the TLS
    /// 1.3 handshake is over: over HTTP/1.1 too the failure says what that may mean, and which key this client presents.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_relay_without_http2_refusing_this_clients_key_is_a_failure_that_says_which_it_presents(bool presentsOne)
    {
        using var identity = NodeIdentity.Create();
        using var listed = NodeIdentity.Create();
        using var other = NodeIdentity.Create();
        using var listener = Listen();
        var serving = ServeHttp1OnlyAsync(listener, identity, 1, [], clientId: listed.NodeId);

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            Identity = presentsOne ? other : null,
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        Assert.Contains(
            $"if it requires mutual TLS (--client-id), it does not list this client's key (this client presents {(presentsOne ? $"node ID {other.NodeId})" : "no key (client.key))")}",
            error.Message);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// An IPv6 literal is bracketed once in the CONNECT target, whether it came bare or, as HttpClient's connect callback
    /// (<see cref="PassageClient.CreateHttpHandler"/>) names it, in brackets: the client used to send "[[::1]]:port",
    /// which a relay refuses as malformed, so that an <c>http://[::1]/</c> through a relay without HTTP/2 failed.
    /// </summary>
    [Theory]
    [InlineData("::1")]
    [InlineData("[::1]")]
    public async Task An_ipv6_target_is_bracketed_once_in_the_connect_head(string host)
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = Listen();
        var heads = new List<string>();
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, heads);
        await using (var client = await StartClientAsync(identity, listener))
        {
            await using var tunnel = await client.ConnectAsync(host, echo.Port).AsTask().WaitAsync(Timeouts.Default);
        }
        lock (heads)
        {
            Assert.StartsWith($"CONNECT [::1]:{echo.Port} HTTP/1.1\r\nHost: [::1]:{echo.Port}\r\n", Assert.Single(heads));
        }
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A host no relay takes is refused before any relay is asked, as the relay would refuse it (400: the request is
    /// malformed). One with a line break in it used to be written into the HTTP/1.1 CONNECT head as it came: it ended the
    /// head early, so that an application passing on a name it was given could have the tunnel go where that name's
    /// injected target said, and what followed, the client's bearer token among it, sent to that destination as the
    /// tunnel's first bytes. A host the relay's name syntax refuses (answered 400, "not a valid host name") was asked of a
    /// relay, though the SOCKS5 door refused it at once.
    /// </summary>
    [Theory]
    [InlineData("origin.test:{0} HTTP/1.1\r\nHost: x\r\n\r\n")]
    [InlineData("origin test")]
    [InlineData("a/b")]
    [InlineData("a..example")]
    [InlineData("192.0.2.999")]
    [InlineData("..")]
    public async Task A_host_no_relay_takes_is_refused_without_asking_one(string hostFormat)
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = Listen();
        var heads = new List<string>();
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, heads);
        await using (var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            Token = "secret-token",
        }, timeProvider: new ManualTimeProvider()))
        {
            await client.StartAsync().WaitAsync(Timeouts.Default);
            var host = string.Format(System.Globalization.CultureInfo.InvariantCulture, hostFormat, echo.Port);
            var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync(host, echo.Port).AsTask().WaitAsync(Timeouts.Default));
            Assert.Equal(TunnelFailure.InvalidRequest, error.Failure);
            Assert.DoesNotContain("\n", error.Message);
            // Its own reason, not the failure's "the relay found the request malformed": no relay was asked.
            Assert.Equal("the host is not one a relay takes", error.Details);
        }
        lock (heads)
        {
            Assert.Empty(heads);
        }
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// Any 2xx answer to CONNECT opens the tunnel (RFC 9110 §9.3.6), not only a 200; it has no body: a Content-Length or
    /// Transfer-Encoding in it is ignored, and the bytes behind its head (here the destination's greeting, in the same
    /// write) are the tunnel's. A 201 or 204 used to fail the attempt as the relay's.
    /// </summary>
    [Theory]
    [InlineData("HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\n")]
    [InlineData("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n")]
    [InlineData("HTTP/1.1 200 Connection established\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200\r\n\r\n")]
    [InlineData("HTTP/1.1 200 \r\n\r\n")]
    [InlineData("HTTP/1.0 200 OK\r\n\r\n")]
    public async Task Any_2xx_answer_opens_the_tunnel_and_its_framing_fields_are_ignored(string answer)
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, [], behind200: "HELLO"u8.ToArray(), answer: Encoding.ASCII.GetBytes(answer));

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        await using (var tunnel = await client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default))
        {
            await tunnel.WriteAsync("hello"u8.ToArray());
            var back = new byte[10];
            await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal("HELLOhello"u8.ToArray(), back);
        }
        Assert.True(client.Status.Single().IsUp);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// An answer that opens no tunnel fails the attempt as the relay's (it said nothing of the destination): a line that only
    /// looks like a status line (its code was taken from the second word whatever the first: <c>FOO 200 X</c> opened a
    /// tunnel), whatever a Proxy-Status behind it says (it was read as the destination's failure), and said so rather than
    /// as a status "0"; and a 101 before the 200, which is no interim answer to pass over: nothing asked to switch
    /// protocols, and the 200 behind it would be the new protocol's bytes.
    /// </summary>
    [Theory]
    [InlineData(null, "FOO 200 X\r\n\r\n")]
    [InlineData(null, "FOO 502 X\r\nProxy-Status: passage; error=dns_error\r\n\r\n")]
    [InlineData(null, "HTTP/2 200 OK\r\n\r\n")]
    [InlineData(null, "HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData(null, "HTTP/1.1  200 OK\r\n\r\n")]
    [InlineData(null, "200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "HTTP/1.1 200 Connection established\r\n\r\n")]
    public async Task An_answer_that_opens_no_tunnel_fails_the_attempt_as_the_relays(string? interim, string answer)
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var serving = ServeHttp1OnlyAsync(
            listener, identity, echo.Port, [], before200: interim is null ? null : Encoding.ASCII.GetBytes(interim), answer: Encoding.ASCII.GetBytes(answer));

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var failure = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayError, failure.Failure);
        if (interim is null)
        {
            Assert.EndsWith("(the relay's answer has no HTTP/1 status line)", failure.Message);
        }
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// An answer head longer than the client reads is the relay's error, said as such: it was reported as "the relay
    /// closed without answering", a relay gone, while the relay was there and still sending.
    /// </summary>
    [Fact]
    public async Task An_answer_head_over_8_KiB_fails_the_attempt_as_the_relays_and_says_so()
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var answer = Encoding.ASCII.GetBytes($"HTTP/1.1 200 Connection established\r\nX-Pad: {new string('a', 9000)}\r\n\r\n");
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, [], answer: answer);

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var failure = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayError, failure.Failure);
        Assert.EndsWith("(the relay's answer head is over 8 KiB)", failure.Message);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task A_relay_that_does_not_answer_a_tunnel_request_fails_it_at_the_answer_timeout()
    {
        // The relay's dial to a destination that drops SYNs never ends, so neither does its wait before the 200.
        using var blackhole = new Blackhole();
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var heads = new List<string>();
        var serving = ServeHttp1OnlyAsync(listener, identity, blackhole.Port, heads);

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            AnswerTimeout = TimeSpan.FromMilliseconds(500),
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        Assert.Contains("did not answer within 500ms", error.Message);
        lock (heads)
        {
            Assert.Single(heads);
        }
        listener.Close();
    }

    /// <summary>
    /// Disposing the client ends a tunnel request still waiting for an HTTP/1.1 relay's answer, as it does one over
    /// HTTP/2: it throws <see cref="ObjectDisposedException"/>, and hands out no tunnel of a disposed client. It used to
    /// wait on, for as long as the answer timeout (here none).
    /// </summary>
    [Fact]
    public async Task Disposing_the_client_ends_a_tunnel_request_waiting_for_an_http1_relays_answer()
    {
        // The relay's dial to a destination that drops SYNs never ends, so neither does its wait before the 200.
        using var blackhole = new Blackhole();
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var heads = new List<string>();
        _ = ServeHttp1OnlyAsync(listener, identity, blackhole.Port, heads);

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            AnswerTimeout = Timeout.InfiniteTimeSpan,
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var waiting = client.ConnectAsync("origin.test", 443).AsTask();
        await Timeouts.WaitUntilAsync(() => { lock (heads) { return heads.Count == 1; } });

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(Timeouts.Default));
        listener.Close();
    }

    /// <summary>
    /// Disposing the client ends its open HTTP/1.1 tunnels, as it does those over HTTP/2: a read under way and the reads and
    /// writes after fail with an <see cref="IOException"/>, and the relay sees the connection end. Such a tunnel used to
    /// stay open until the application disposed it (its read waited on).
    /// </summary>
    [Fact]
    public async Task Disposing_the_client_ends_its_open_http1_tunnels()
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = Listen();
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, []);

        var client = await StartClientAsync(identity, listener);
        await using var tunnel = await client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default);
        await tunnel.WriteAsync("hello"u8.ToArray());
        var back = new byte[5];
        await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        var reading = tunnel.ReadAsync(new byte[16]).AsTask();

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Assert.ThrowsAnyAsync<IOException>(() => reading.WaitAsync(Timeouts.Default));
        await Assert.ThrowsAnyAsync<IOException>(async () => await tunnel.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        await Assert.ThrowsAnyAsync<IOException>(async () => await tunnel.WriteAsync("more"u8.ToArray()).AsTask().WaitAsync(Timeouts.Default));
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// An HTTP/1.1 tunnel that the application disposes is not kept by the client until the client is disposed (its
    /// connection, closed, would be held for every tunnel the client ever opened).
    /// </summary>
    [Fact]
    public async Task An_http1_tunnel_the_application_disposes_is_not_kept_by_the_client()
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        using var listener = Listen();
        var serving = ServeHttp1OnlyAsync(listener, identity, echo.Port, []);

        await using var client = await StartClientAsync(identity, listener);
        var connection = await OpenUseAndDisposeAsync(client, echo.Port);

        // Collected once what ran on the thread pool for it has let go.
        await Timeouts.WaitUntilAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return !connection.IsAlive;
        }, () => "the disposed tunnel's connection is still held");
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// Disposing the client ends an HTTP/1.1 relay's probe under way (its connection is its own, in a TLS handshake the
    /// relay never answers): the start that made it returns, and the connection is closed, whatever the connect timeout.
    /// </summary>
    [Fact]
    public async Task Disposing_the_client_ends_an_http1_relays_probe_under_way()
    {
        using var identity = NodeIdentity.Create();
        using var listener = Listen();
        var silent = false;
        var held = new List<Task>();
        var serving = ServeHttp1OnlyAsync(listener, identity, 1, [], silent: () => Volatile.Read(ref silent), held: held);

        var client = await StartClientAsync(identity, listener, connectTimeout: TimeSpan.FromHours(1));
        Volatile.Write(ref silent, true);
        var starting = client.StartAsync();
        await Timeouts.WaitUntilAsync(() => { lock (held) { return held.Count == 1; } });

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await starting.WaitAsync(Timeouts.Default);
        Assert.True(client.Status.Single().IsUp);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>A socket listening on a loopback port of its own: a relay of these tests.</summary>
    private static Socket Listen()
    {
        var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        return listener;
    }

    /// <summary>A started client of the relay <paramref name="identity"/> on <paramref name="listener"/>; its clock never moves, so it probes only at the start.</summary>
    private static async Task<PassageClient> StartClientAsync(NodeIdentity identity, Socket listener, TimeSpan? connectTimeout = null)
    {
        var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            ConnectTimeout = connectTimeout ?? new PassageClientOptions().ConnectTimeout,
        }, timeProvider: new ManualTimeProvider());
        await client.StartAsync().WaitAsync(Timeouts.Default);
        return client;
    }

    /// <summary>Opens a tunnel, passes bytes through it and disposes it: a weak reference to its connection's socket.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> OpenUseAndDisposeAsync(PassageClient client, int port)
    {
        var tunnel = await client.ConnectAsync("origin.test", port).AsTask().WaitAsync(Timeouts.Default);
        // The TLS stream's own (protected) InnerStream: the test has no other way to the socket.
        var inner = typeof(System.Net.Security.AuthenticatedStream).GetProperty("InnerStream", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        var socket = ((NetworkStream)inner.GetValue(DelegatingStream.Innermost(tunnel))!).Socket;
        await tunnel.WriteAsync("hello"u8.ToArray());
        var back = new byte[5];
        await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        await tunnel.DisposeAsync();
        return new WeakReference(socket);
    }

    /// <summary>
    /// Disposing the client ends a tunnel request whose TLS handshake with an HTTP/1.1 relay is under way: it throws
    /// <see cref="ObjectDisposedException"/> and its connection is closed, whatever the connect timeout (here an hour).
    /// </summary>
    [Fact]
    public async Task Disposing_the_client_ends_a_tunnel_request_in_its_tls_handshake_with_an_http1_relay()
    {
        using var identity = NodeIdentity.Create();
        using var listener = Listen();
        var silent = false;
        var held = new List<Task>();
        var serving = ServeHttp1OnlyAsync(listener, identity, 1, [], silent: () => Volatile.Read(ref silent), held: held);

        await using var client = await StartClientAsync(identity, listener, connectTimeout: TimeSpan.FromHours(1));
        Volatile.Write(ref silent, true);
        var waiting = client.ConnectAsync("origin.test", 443).AsTask();
        await Timeouts.WaitUntilAsync(() => { lock (held) { return held.Count == 1; } });

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(Timeouts.Default));
        Task connection;
        lock (held)
        {
            connection = held[0];
        }
        await connection.WaitAsync(Timeouts.Default);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A destination that speaks first (as SSH or SMTP do) can have its first bytes arrive with the relay's 200: the
    /// application's end of sending must still reach it.
    /// </summary>
    [Fact]
    public async Task The_applications_half_close_reaches_a_destination_whose_first_bytes_came_with_the_200()
    {
        using var destination = new Socket(SocketType.Stream, ProtocolType.Tcp);
        destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        destination.Listen(1);
        var answering = Task.Run(async () =>
        {
            using var accepted = await destination.AcceptAsync();
            var received = await Loopback.ReadToEndAsync(accepted);
            await Loopback.SendAllAsync(accepted, Encoding.ASCII.GetBytes($"got {received.Length}, bye"));
            accepted.Shutdown(SocketShutdown.Send);
        });
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var serving = ServeHttp1OnlyAsync(listener, identity, ((IPEndPoint)destination.LocalEndPoint!).Port, [], behind200: "BANNER"u8.ToArray());

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        await using var tunnel = new StreamConnection(await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        var banner = new byte[6];
        Assert.Equal(6, await tunnel.ReadAsync(banner, CancellationToken.None).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal("BANNER"u8.ToArray(), banner);

        await tunnel.WriteAsync("hello"u8.ToArray(), CancellationToken.None);
        await tunnel.CompleteWritesAsync(CancellationToken.None);
        var rest = new MemoryStream();
        var buffer = new byte[256];
        int n;
        while ((n = await tunnel.ReadAsync(buffer, CancellationToken.None).AsTask().WaitAsync(Timeouts.Default)) > 0)
        {
            rest.Write(buffer, 0, n);
        }
        Assert.Equal("got 5, bye", Encoding.ASCII.GetString(rest.ToArray()));
        await answering.WaitAsync(Timeouts.Default);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A minimal HTTP/1.1-only CONNECT relay: TLS with ALPN http/1.1, <paramref name="before200"/> (interim answers, in
    /// a write of their own), 200 or <paramref name="answer"/> (with <paramref name="behind200"/> in the same write, as
    /// if the destination's first bytes had come at once), then to the destination. A connection accepted while
    /// <paramref name="silent"/> says so gets nothing, not even the TLS handshake: it is read until the client closes it
    /// (the task that does so added to <paramref name="held"/>).
    /// </summary>
    internal static async Task ServeHttp1OnlyAsync(Socket listener, NodeIdentity identity, int echoPort, List<string> heads, byte[]? behind200 = null, byte[]? before200 = null, byte[]? answer = null, Func<bool>? silent = null, List<Task>? held = null, NodeId? clientId = null)
    {
        var tasks = new List<Task>();
        await Loopback.AcceptEachAsync(listener, accepted =>
        {
            if (silent?.Invoke() == true)
            {
                var holding = Task.Run(async () =>
                {
                    using (accepted)
                    {
                        try
                        {
                            await Loopback.ReadToEndAsync(accepted);
                        }
                        catch (SocketException)
                        {
                            // Reset: closed too.
                        }
                    }
                });
                lock (held!)
                {
                    held.Add(holding);
                }
                tasks.Add(holding);
                return;
            }
            tasks.Add(Task.Run(async () =>
            {
                await using var tls = new SslStream(new NetworkStream(accepted, ownsSocket: true));
                try
                {
                    await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                    {
                        ServerCertificate = identity.Certificate,
                        ApplicationProtocols = [SslApplicationProtocol.Http11],
                        // A relay serving only one client ID (mutual TLS), when given.
                        ClientCertificateRequired = clientId is not null,
                        RemoteCertificateValidationCallback = clientId is null ? null : (_, certificate, _, _) => CertificatePin.MatchesPin(certificate, clientId),
                    });
                    var head = new StringBuilder();
                    var one = new byte[1];
                    while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await tls.ReadAsync(one) == 1)
                    {
                        head.Append((char)one[0]);
                    }
                    if (!head.ToString().StartsWith("CONNECT", StringComparison.Ordinal))
                    {
                        return; // the client's probe (it found out there is no h2)
                    }
                    lock (heads)
                    {
                        heads.Add(head.ToString());
                    }
                    var upstream = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    await upstream.ConnectAsync(new IPEndPoint(IPAddress.Loopback, echoPort));
                    if (before200 is not null)
                    {
                        await tls.WriteAsync(before200);
                    }
                    await tls.WriteAsync((byte[])[.. answer ?? "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), .. behind200 ?? []]);
                    await using var up = new SocketConnection(upstream);
                    await BytePump.RunAsync(new StreamConnection(tls), up);
                }
                catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException)
                {
                }
            }));
        });
        await Task.WhenAll(tasks);
    }
}
