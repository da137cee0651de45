using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Client;

/// <summary>
/// One generation of a <see cref="RelayLink"/>'s connections: the HTTP client that opens them, the TCP connections it
/// opened, and what uses them: requests on their way and the tunnels they opened. Retired (disposed) when the relay
/// fails: the HTTP client is disposed, and every one of its TCP connections is closed once nothing of this generation
/// is in use any more, at once when nothing is. A request counts from before it is sent, so that one waiting for its
/// answer when another fails the relay is not cut, nor a tunnel whose 200 came just before. Closed, with the link it
/// belongs to, every connection goes at once, whatever still uses it.
/// </summary>
/// <remarks>
/// The HTTP client's own disposal is not enough: it keeps, and never closes, a connection whose relay allows no
/// stream (SETTINGS_MAX_CONCURRENT_STREAMS 0), opening another beside it for every request, so such a relay gathered
/// the client's sockets with every attempt and every probe.
/// </remarks>
internal sealed class RelayConnections : IDisposable
{
    private readonly object _gate = new();
    private readonly HashSet<Transport> _transports = [];
    private readonly CancellationTokenRegistration _closing;
    private int _uses;
    // Connection setups started, and those still making their TCP connection (see Setups and HasConnection).
    private long _setups;
    private int _connecting;
    private bool _retired;
    private bool _closed;

    /// <summary>
    /// Takes <paramref name="handler"/> (its connect callback becomes this generation's); when <paramref name="closing"/>
    /// is cancelled (the client is disposed), closes every connection at once, in use or not.
    /// </summary>
    public RelayConnections(SocketsHttpHandler handler, CancellationToken closing)
    {
        handler.ConnectCallback = ConnectAsync;
        handler.PlaintextStreamFilter = SetUp;
        Http = new HttpMessageInvoker(handler, disposeHandler: true);
        // Last: on a token already cancelled, Close runs here.
        _closing = closing.Register(Close);
    }

    /// <summary>Sends requests over this generation's connections.</summary>
    public HttpMessageInvoker Http { get; }

    /// <summary>
    /// Counts a use of this generation (a request, and the tunnel it may open) until the returned lease is disposed.
    /// </summary>
    public Lease Use()
    {
        lock (_gate)
        {
            _uses++;
        }
        return new Lease(this);
    }

    /// <summary>Retires this generation: no new request, and its connections closed as their tunnels end.</summary>
    public void Dispose()
    {
        bool idle;
        lock (_gate)
        {
            if (_retired)
            {
                return;
            }
            _retired = true;
            idle = _uses == 0;
        }
        Http.Dispose();
        if (idle)
        {
            CloseAll();
        }
    }

    /// <summary>Retires this generation and closes its connections now, even those a request or a tunnel still uses.</summary>
    private void Close()
    {
        lock (_gate)
        {
            _retired = true;
            _closed = true;
        }
        Http.Dispose();
        CloseAll();
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _setups++;
            _connecting++;
        }
        try
        {
            return await ConnectTransportAsync(context, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                _connecting--;
            }
        }
    }

    private async ValueTask<Stream> ConnectTransportAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var transport = new Transport(this, new NetworkStream(socket, ownsSocket: true)) { SettingUpFor = context.InitialRequestMessage };
        lock (_gate)
        {
            // Retired, a connection is still opened for a request on its way (it closes when the last use ends); closed, none.
            if (!_closed && (!_retired || _uses > 0))
            {
                _transports.Add(transport);
                return transport;
            }
        }
        await transport.DisposeAsync().ConfigureAwait(false);
        throw new IOException("the connection to the relay was dropped while it was being opened");
    }

    /// <summary>
    /// The HTTP client has a connection's TLS up (it hands over the decrypted stream before HTTP/2 starts on it): the
    /// connection is set up. Told by the request it was opened for, which the connect callback was given too.
    /// </summary>
    private ValueTask<Stream> SetUp(SocketsHttpPlaintextStreamFilterContext context, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            foreach (var transport in _transports)
            {
                if (ReferenceEquals(transport.SettingUpFor, context.InitialRequestMessage))
                {
                    transport.SettingUpFor = null;
                }
            }
        }
        return ValueTask.FromResult(context.PlaintextStream);
    }

    /// <summary>
    /// How many connection setups this generation has started (the HTTP client's connect callback ran): one started after
    /// a request was made may be the one it waits for.
    /// </summary>
    public long Setups
    {
        get
        {
            lock (_gate)
            {
                return _setups;
            }
        }
    }

    /// <summary>
    /// Whether a connection of this generation is up (its TLS handshake done) and none is being set up: a request need not
    /// wait for a setup, unless one starts while it waits (see <see cref="Setups"/>).
    /// </summary>
    /// <remarks>
    /// A connection joins the generation when its TCP connection is made, before its TLS handshake: counted from then, a
    /// request that came while the first request's connection was still being set up was given the answer timeout alone
    /// for that setup and the answer, and failed a relay that was only slow to reach. One that comes while a second is set
    /// up (the first takes no more streams, or is going away) may wait for it in the HTTP client's queue.
    /// </remarks>
    public bool HasConnection
    {
        get
        {
            lock (_gate)
            {
                return _connecting == 0 && _transports.Count > 0 && _transports.All(t => t.SettingUpFor is null);
            }
        }
    }

    /// <summary>For each connection open now, a token cancelled when it closes (see <see cref="Lease.ConnectionsClosed"/>).</summary>
    private CancellationToken[] Closings()
    {
        lock (_gate)
        {
            return [.. _transports.Select(t => t.Closed)];
        }
    }

    private void Ended()
    {
        lock (_gate)
        {
            if (--_uses > 0 || !_retired)
            {
                return;
            }
        }
        CloseAll();
    }

    private void CloseAll()
    {
        // Done with: the link's closing has nothing left to close here (Unregister does not wait for a running Close).
        _closing.Unregister();
        Transport[] all;
        lock (_gate)
        {
            all = [.. _transports];
        }
        foreach (var transport in all)
        {
            transport.Dispose();
        }
    }

    /// <summary>
    /// One TCP connection of the generation; it leaves the generation's set when closed: by the HTTP client when the
    /// connection has ended (the relay closed it, it broke, or it went quiet past its pings), or by the generation.
    /// Internal for its tests alone.
    /// </summary>
    internal sealed class Transport(RelayConnections owner, Stream inner) : DelegatingStream(inner)
    {
        // Not disposed: it has no timer, and a tunnel may still register with its token.
        private readonly CancellationTokenSource _closed = new();

        /// <summary>Cancelled when the connection is closed, or has ended (the relay closed it, or it broke).</summary>
        public CancellationToken Closed => _closed.Token;

        /// <summary>
        /// Until the connection's TLS handshake is done, the request it was opened for (null once done: it is not kept for
        /// the connection's life); under the owner's gate.
        /// </summary>
        public HttpRequestMessage? SettingUpFor { get; set; }

        /// <summary>
        /// The HTTP client's reads: their end of stream or failure is the connection's end, which the client may not close
        /// at once (it keeps the connection while a stream it counts as open is left).
        /// </summary>
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = Inner.ReadAsync(buffer, cancellationToken);
            if (!read.IsCompletedSuccessfully)
            {
                return EndWatchedAsync(read, buffer.IsEmpty);
            }
            // Its result is taken here, once, and passed on as a result: a read completed through its source (a socket's,
            // which completed just after it started) cannot be taken twice, the source being reused once it was.
            var count = read.Result;
            if (count == 0 && !buffer.IsEmpty)
            {
                _closed.Cancel();
            }
            return new ValueTask<int>(count);
        }

        // A connection waits in most of its reads: the state those waits hold is pooled rather than one object each.
        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<int> EndWatchedAsync(ValueTask<int> read, bool empty)
        {
            try
            {
                var count = await read.ConfigureAwait(false);
                if (count == 0 && !empty)
                {
                    _closed.Cancel();
                }
                return count;
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                _closed.Cancel();
                throw;
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Forget();
            }
            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync()
        {
            Forget();
            return base.DisposeAsync();
        }

        private void Forget()
        {
            lock (owner._gate)
            {
                owner._transports.Remove(this);
            }
            _closed.Cancel();
        }
    }

    /// <summary>One use of the generation; disposing it also disposes the exchange it was given (more than once is harmless).</summary>
    public sealed class Lease(RelayConnections owner) : IDisposable
    {
        private IDisposable? _exchange;
        private int _disposed;

        /// <summary>
        /// Once the relay has answered a tunnel request on it: a token for each connection open now, cancelled when it
        /// closes. Not told which connection carries the tunnel, the tunnel's end is known when all are cancelled (more than
        /// one only when a relay's stream limit made the HTTP client open another): late, at worst, never early.
        /// </summary>
        public CancellationToken[] ConnectionsClosed() => owner.Closings();

        /// <summary>The tunnel's exchange, disposed with this lease: the use goes on as long as the tunnel.</summary>
        public Lease With(IDisposable exchange)
        {
            _exchange = exchange;
            return this;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _exchange?.Dispose();
                owner.Ended();
            }
        }
    }
}
