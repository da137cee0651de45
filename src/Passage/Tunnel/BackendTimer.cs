namespace Passage.Tunnel;

/// <summary>
/// <c>system.backendTimeout</c> for one request at the server end: ends it once the backend has kept it waiting that
/// long without a byte moving. The clock runs only while Passage waits on the backend (a write of the request body
/// that the backend does not take, the answer's head once the request is sent, a read of the answer's body) and not on
/// the client: while the client's request body is slow to come, the backend may well be waiting for it, and a client's
/// pace is its own business. Every byte moved starts the wait again, so a transfer that keeps moving is never cut
/// however long it takes.
/// </summary>
/// <remarks>
/// The rule of a reverse proxy's read and send timeouts to its upstream (nginx: <c>proxy_read_timeout</c>,
/// <c>proxy_send_timeout</c>). The request body and the answer can move at once, so waits are counted on each side.
/// </remarks>
internal sealed class BackendTimer : IDisposable
{
    /// <summary>The timer of the exchange whose send runs in this flow (see <see cref="TimeConnectionReads"/>).</summary>
    private static readonly AsyncLocal<BackendTimer?> s_sending = new();

    private readonly CancellationTokenSource? _source;
    private readonly CancellationToken _outer;
    private readonly TimeSpan _limit;
    private readonly Lock _lock = new();
    private int _backendWaits;
    private int _clientWaits;
    private int _answer;

    /// <param name="limit">The longest wait; zero or infinite for none.</param>
    /// <param name="outer">Ends the request for other reasons (the client went, the end stops).</param>
    public BackendTimer(TimeSpan limit, CancellationToken outer)
    {
        _outer = outer;
        _limit = limit;
        if (limit > TimeSpan.Zero && limit != Timeout.InfiniteTimeSpan)
        {
            _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        }
    }

    /// <summary>Cancelled when the backend kept the request waiting too long, or by the outer token.</summary>
    public CancellationToken Token => _source?.Token ?? _outer;

    /// <summary>The longest wait.</summary>
    public TimeSpan Limit => _limit;

    /// <summary>Whether the request ended because the backend kept it waiting (rather than for an outer reason).</summary>
    public bool Expired => _source is { IsCancellationRequested: true } && !_outer.IsCancellationRequested;

    /// <summary>A stream to or from the backend: its reads and writes are waits on the backend.</summary>
    public Stream WatchBackend(Stream backend) => _source is null ? backend : new WatchedStream(backend, this, backendSide: true);

    /// <summary>The client's request body: while a read of it waits, the clock stops.</summary>
    public Stream WatchClient(Stream client) => _source is null ? client : new WatchedStream(client, this, backendSide: false);

    /// <summary>
    /// The timer of the exchange being sent in this flow, if it runs at all: what a backend connection's reads count as bytes
    /// moved (<see cref="Moved"/>).
    /// </summary>
    public static BackendTimer? Sending => s_sending.Value;

    /// <summary>
    /// From here on in this flow (the caller's async method and what it calls), reads of a backend connection are bytes moved
    /// for this exchange: the answer's head and the interim (1xx) answers before it, which the HTTP client reads and passes
    /// over without a word. A backend that sends <c>102 Processing</c> while it works moves bytes and is not cut. The answer's
    /// body is read through <see cref="WatchBackend"/> once the caller's method has returned, where this no longer holds.
    /// </summary>
    public void TimeConnectionReads()
    {
        if (_source is not null)
        {
            s_sending.Value = this;
        }
    }

    /// <summary>Bytes came from the backend: the wait starts again, if the clock runs.</summary>
    public void Moved()
    {
        if (_source is null)
        {
            return;
        }
        lock (_lock)
        {
            if (Running)
            {
                Schedule();
            }
        }
    }

    /// <summary>The request has gone out whole: from now until <see cref="Answered"/>, the backend owes its answer's head.</summary>
    public void AwaitAnswer()
    {
        if (Interlocked.CompareExchange(ref _answer, 1, 0) == 0)
        {
            Begin(backendSide: true);
        }
    }

    /// <summary>The answer's head arrived (or the exchange failed), possibly before the request body was through.</summary>
    public void Answered()
    {
        if (Interlocked.Exchange(ref _answer, 2) == 1)
        {
            End(backendSide: true);
        }
    }

    public void Dispose() => _source?.Dispose();

    private void Begin(bool backendSide)
    {
        if (_source is null)
        {
            return;
        }
        lock (_lock)
        {
            var wasRunning = Running;
            Count(backendSide, +1);
            if (Running != wasRunning)
            {
                Schedule();
            }
        }
    }

    /// <summary>A wait ended, with bytes moved (or the end of a body): the clock starts again if it runs at all.</summary>
    private void End(bool backendSide)
    {
        if (_source is null)
        {
            return;
        }
        lock (_lock)
        {
            Count(backendSide, -1);
            Schedule();
        }
    }

    private void Count(bool backendSide, int change)
    {
        if (backendSide)
        {
            _backendWaits += change;
        }
        else
        {
            _clientWaits += change;
        }
    }

    private bool Running => _backendWaits > 0 && _clientWaits == 0;

    private void Schedule()
    {
        try
        {
            _source!.CancelAfter(Running ? _limit : Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // The request is over; a body copy that outlived it has nothing left to time.
        }
    }

    /// <summary>One side of a body: each read, write and flush is a wait on that side.</summary>
    private sealed class WatchedStream(Stream inner, BackendTimer timer, bool backendSide) : Transport.DelegatingStream(inner)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            timer.Begin(backendSide);
            try
            {
                return await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                timer.End(backendSide);
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            timer.Begin(backendSide);
            try
            {
                await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                timer.End(backendSide);
            }
        }

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            timer.Begin(backendSide);
            try
            {
                await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                timer.End(backendSide);
            }
        }
    }
}
