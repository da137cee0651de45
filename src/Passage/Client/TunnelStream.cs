using Passage.Transport;

namespace Passage.Client;

/// <summary>
/// The application's end of a tunnel: reads and writes go to the relay's tunnel stream, every write
/// is flushed (an HTTP/2 request body is otherwise held back), and disposal ends the exchange.
/// </summary>
/// <remarks>
/// With <c>brokeBeforeFirstByte</c>, the tunnel also watches for a relay that answers 200 and then breaks the tunnel
/// before it has delivered a byte (see <see cref="IsRelayBreak"/>): <c>brokeBeforeFirstByte</c> is called, once, when a
/// read or a write fails so. The application gets the read's or write's error either way. The watch ends with the first byte, a clean end,
/// an I/O failure, or the tunnel's disposal (a read it aborts fails by the application's doing, not the relay's): one
/// field check per read after that.
/// <para>
/// With <c>connectionsClosed</c> (an HTTP/2 tunnel), a write that waits for the relay's flow-control window fails when the
/// tunnel's stream is reset or its connection ends. The .NET HTTP/2 client leaves such a write waiting for good: it
/// fails a waiting write only while a request body is being sent, and an extended CONNECT has none. So while a write
/// waits and the application is not reading (from the write's start, or from the end of the read then under way), the
/// tunnel waits with a zero-byte read, which the client ends at the reset without taking any byte; its failure, or that
/// of an application read under way, ends the write (and fails those that follow). An application read that comes
/// meanwhile waits for the zero-byte read first.
/// </para>
/// <para>
/// A zero-byte read ends at once while bytes from the relay sit unread (and only a read sees a reset: the client fails it
/// even with bytes left), so then the watch reads those bytes ahead into a buffer of its own, which the application's
/// next reads take first, and waits again. The read-ahead is one buffer of <see cref="ReadAheadSize"/> bytes (a tunnel holds
/// no more, however much the relay sends): while it is full, the watch asks again every <see cref="FullReadAheadPoll"/>
/// (a zero-byte read then tells whether the stream was reset), until the application reads. An application read that finds no
/// byte read ahead ends the watch at its next zero-byte read's end and goes to the stream. When no write waits, a read
/// costs one empty-buffer check more, and no copy.
/// </para>
/// <para>
/// Once the relay has ended its side (END_STREAM), the HTTP client tells the stream of nothing more: a waiting write is
/// then failed by its connection's end alone (see <see cref="WatchConnection"/>). A relay's reset of the stream after its
/// end is seen by nothing, and leaves such a write waiting.
/// </para>
/// </remarks>
internal sealed class TunnelStream(Stream inner, IDisposable? exchange, string relay, Action? brokeBeforeFirstByte = null, CancellationToken[]? connectionsClosed = null)
    : DelegatingStream(inner)
{
    /// <summary>Whether writes are watched (see the remarks): those of an HTTP/2 tunnel, which knows when its connection closes.</summary>
    private readonly bool _watchWrites = connectionsClosed is not null;

    /// <summary>RFC 9113 §8.5: the error code with which a proxy resets a tunnel's stream after the destination's TCP reset.</summary>
    private const long ConnectError = 0xa;

    /// <summary>The most relay bytes the write watch reads ahead (see the remarks): one DATA frame at HTTP/2's default maximum size.</summary>
    private const int ReadAheadSize = 16_384;

    /// <summary>
    /// How often the watch asks whether the stream was reset while its read-ahead is full and the application does not read
    /// (see <see cref="ProbeAsync"/>): the longest a waiting write goes on after the relay broke such a tunnel.
    /// </summary>
    private static readonly TimeSpan FullReadAheadPoll = TimeSpan.FromSeconds(1);

    private readonly object _gate = new();
    private Action? _watch = brokeBeforeFirstByte;

    /// <summary>The write watch under way while a write waits (see the remarks); taken and tested under <see cref="_gate"/>.</summary>
    private Task? _probe;

    /// <summary>1 while an application read is under way, from its call to its end (see <see cref="Begin"/>).</summary>
    private int _readUnderWay;

    /// <summary>1 while an application write is under way, its flush included (see <see cref="Begin"/>).</summary>
    private int _writeUnderWay;

    /// <summary>Whether an application read is under way (set under <see cref="_gate"/>).</summary>
    private bool _reading;

    /// <summary>Whether an application read waits for the zero-byte read's end (set under <see cref="_gate"/>): the watch then ends there.</summary>
    private bool _readWaiting;

    /// <summary>Relay bytes the watch read ahead while a write waited (see the remarks); allocated at the first need.</summary>
    private byte[]? _ahead;

    /// <summary>The bytes of <see cref="_ahead"/> the application has not read: from here (taken under <see cref="_gate"/>)...</summary>
    private int _aheadFrom;

    /// <summary>...to here (moved by the watch alone, under <see cref="_gate"/>; the watch reads into what follows).</summary>
    private int _aheadTo;

    /// <summary>Whether a write is under way that did not complete at once (set under <see cref="_gate"/>).</summary>
    private bool _writeWaiting;

    /// <summary>Cancelled when a write's wait is to end: a read failed (<see cref="_brokenBy"/>), or the application cancelled a write.</summary>
    private CancellationTokenSource? _writeEnd;

    /// <summary>Completed to wake the watch while it waits with a full read-ahead (set under <see cref="_gate"/>).</summary>
    private TaskCompletionSource? _wake;

    /// <summary>Whether the application disposed the tunnel (set under <see cref="_gate"/>): the bytes read ahead are not its any more.</summary>
    private bool _disposed;

    /// <summary>The first read's failure seen (the zero-byte read's or the application's): the stream was reset, or its connection ended.</summary>
    private IOException? _brokenBy;

    /// <summary>How many relay bytes the watch holds for the application (read ahead, not read yet).</summary>
    internal int ReadAhead
    {
        get
        {
            lock (_gate)
            {
                return _aheadTo - _aheadFrom;
            }
        }
    }

    /// <summary>
    /// True when a read's or write's I/O failure (the application's own cancelling or disposing is none) is the relay's breaking
    /// the tunnel: anything but a reset with CONNECT_ERROR, by which a relay says the destination reset its connection
    /// (RFC 9113 §8.5), which another relay would see too.
    /// </summary>
    internal static bool IsRelayBreak(IOException failure) => Within<HttpProtocolException>(failure)?.ErrorCode != ConnectError;

    /// <summary><paramref name="failure"/>, or the first of its inner exceptions, that is a <typeparamref name="T"/>.</summary>
    private static T? Within<T>(Exception failure) where T : Exception
    {
        for (Exception? inner = failure; inner is not null; inner = inner.InnerException)
        {
            if (inner is T found)
            {
                return found;
            }
        }
        return null;
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (!_watchWrites)
        {
            return ReadInner(buffer, offset, count);
        }
        ThrowIfDisposed();
        Begin(ref _readUnderWay, "read");
        try
        {
            return ReadBesideProbe(buffer, offset, count);
        }
        finally
        {
            Volatile.Write(ref _readUnderWay, 0);
        }
    }

    /// <summary>A read of a tunnel whose writes are watched: after the zero-byte read under way, if any (see the remarks).</summary>
    private int ReadBesideProbe(byte[] buffer, int offset, int count)
    {
        int ahead;
        while (!TryStartReading(buffer.AsSpan(offset, count), out ahead, out var probe))
        {
            probe.Wait();
        }
        if (ahead >= 0)
        {
            return ahead;
        }
        try
        {
            return ReadInner(buffer, offset, count);
        }
        catch (IOException e)
        {
            Broke(e);
            throw;
        }
        finally
        {
            EndReading();
        }
    }

    private int ReadInner(byte[] buffer, int offset, int count)
    {
        if (_watch is null)
        {
            return Inner.Read(buffer, offset, count);
        }
        try
        {
            return Watched(Inner.Read(buffer, offset, count), count);
        }
        catch (IOException e)
        {
            Failed(e);
            throw;
        }
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _watchWrites ? ReadBesideProbeAsync(buffer, cancellationToken) : ReadInnerAsync(buffer, cancellationToken);

    private ValueTask<int> ReadInnerAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        _watch is null ? Inner.ReadAsync(buffer, cancellationToken) : WatchedReadAsync(buffer, cancellationToken);

    /// <summary>A read of a tunnel whose writes are watched, the only one under way (see <see cref="Begin"/>).</summary>
    private async ValueTask<int> ReadBesideProbeAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        Begin(ref _readUnderWay, "read");
        try
        {
            return await ReadOneBesideProbeAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _readUnderWay, 0);
        }
    }

    /// <summary>A read of a tunnel whose writes are watched: after the zero-byte read under way, if any (see the remarks).</summary>
    private async ValueTask<int> ReadOneBesideProbeAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int ahead;
        while (!TryStartReading(buffer.Span, out ahead, out var probe))
        {
            try
            {
                await probe.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // No longer waiting: the watch goes on, or starts again.
                EndReading();
                throw;
            }
        }
        if (ahead >= 0)
        {
            return ahead;
        }
        try
        {
            return await ReadInnerAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            Broke(e);
            throw;
        }
        finally
        {
            EndReading();
        }
    }

    /// <summary>
    /// Refuses a read or write of a disposed tunnel as such, before <see cref="Begin"/> can take it for a second one: a read
    /// under way at the disposing ends after it, on the thread pool, and one that comes meanwhile (the local HTTP proxy's
    /// drain, after its pump tore the tunnel down) would be told that a read is under way.
    /// </summary>
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);

    /// <summary>
    /// Marks an application read or write (<paramref name="underWay"/>) as under way until it is set to 0 again, refusing one
    /// that comes meanwhile, as the TLS stream of an HTTP/1.1 tunnel refuses it: the HTTP/2 client waits for one read and
    /// one write of a stream at a time, and a second left both waiting for good (and failed the client's disposing).
    /// </summary>
    private static void Begin(ref int underWay, string what)
    {
        if (Interlocked.Exchange(ref underWay, 1) != 0)
        {
            throw new NotSupportedException($"a {what} of this tunnel is under way already: a tunnel takes one read and one write at a time (a read beside a write is fine)");
        }
    }

    /// <summary>A read (the application's or the zero-byte one) failed: a write that waits, or comes, fails with it.</summary>
    private void Broke(IOException failure)
    {
        // Full fences both sides (see WatchedWriteAsync): a write that starts now either sees the failure or is cancelled.
        Interlocked.CompareExchange(ref _brokenBy, failure, null);
        Volatile.Read(ref _writeEnd)?.Cancel();
    }

    /// <summary>
    /// Starts an application read into <paramref name="buffer"/>: with bytes the watch read ahead, takes them (their count in
    /// <paramref name="ahead"/>; the watch goes on, or starts again, as after any read); else marks the read as under way
    /// (<paramref name="ahead"/> -1), unless the watch <paramref name="probe"/> is (then false: it ends at its zero-byte
    /// read's end, and the read starts again).
    /// </summary>
    private bool TryStartReading(Span<byte> buffer, out int ahead, out Task probe)
    {
        probe = Task.CompletedTask;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_aheadTo > _aheadFrom)
            {
                ahead = Math.Min(buffer.Length, _aheadTo - _aheadFrom);
                _ahead.AsSpan(_aheadFrom, ahead).CopyTo(buffer);
                _aheadFrom += ahead;
                _readWaiting = false;
                StartProbeIfWaiting();
                return true;
            }
            ahead = -1;
            if (_probe is { IsCompleted: false } running)
            {
                _readWaiting = true;
                WakeProbe();
                probe = running;
                return false;
            }
            _readWaiting = false;
            _reading = true;
            return true;
        }
    }

    /// <summary>
    /// An application read has ended: a write that began to wait while it was under way is watched from now on (the
    /// application may read no more; its next read, if any, waits for the zero-byte read as any does).
    /// </summary>
    private void EndReading()
    {
        lock (_gate)
        {
            _reading = false;
            _readWaiting = false;
            StartProbeIfWaiting();
        }
    }

    /// <summary>A write waits: starts the zero-byte read that ends it at the stream's reset, unless a read is under way.</summary>
    private void StartProbe()
    {
        lock (_gate)
        {
            _writeWaiting = true;
            StartProbeIfWaiting();
        }
    }

    /// <summary>
    /// Under <see cref="_gate"/>: wakes the watch if it waits with a full read-ahead (it looks again at once), and starts it
    /// if a write waits, no read is under way or waits, and no watch is.
    /// </summary>
    private void StartProbeIfWaiting()
    {
        WakeProbe();
        if (_writeWaiting && !_reading && !_readWaiting && _probe is not { IsCompleted: false })
        {
            _probe = ProbeAsync();
        }
    }

    /// <summary>Under <see cref="_gate"/>: wakes the watch if it waits with a full read-ahead (see <see cref="ProbeAsync"/>).</summary>
    private void WakeProbe()
    {
        _wake?.TrySetResult();
        _wake = null;
    }

    /// <summary>
    /// The watch: zero-byte reads, and between them the relay's bytes read ahead (see the remarks), until no write waits, a
    /// read waits for its end, the tunnel is disposed, or the stream ends. With the read-ahead full, a zero-byte read ends
    /// at once (more bytes sit unread), and only tells whether the stream was reset by then: it is asked again every
    /// <see cref="FullReadAheadPoll"/>, or at once when the application reads or the write ends.
    /// </summary>
    private async Task ProbeAsync()
    {
        try
        {
            while (true)
            {
                await Inner.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
                Memory<byte> room;
                Task? woken = null;
                lock (_gate)
                {
                    if (!_writeWaiting || _readWaiting || _disposed)
                    {
                        return;
                    }
                    room = RoomAhead();
                    if (room.IsEmpty)
                    {
                        _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        woken = _wake.Task;
                    }
                }
                if (woken is not null)
                {
                    using var poll = new CancellationTokenSource();
                    await Task.WhenAny(woken, Task.Delay(FullReadAheadPoll, poll.Token)).ConfigureAwait(false);
                    await poll.CancelAsync().ConfigureAwait(false);
                    continue;
                }
                // Bytes sit unread (or the stream ended): this read returns at once.
                var read = await Inner.ReadAsync(room).ConfigureAwait(false);
                if (read > 0)
                {
                    // The relay has delivered the tunnel's first byte, if none was read before (see Watched), though the
                    // application may not read it before the relay breaks the tunnel.
                    _watch = null;
                }
                lock (_gate)
                {
                    _aheadTo += read;
                    if (read == 0 || _readWaiting)
                    {
                        return;
                    }
                }
            }
        }
        catch (IOException e)
        {
            Broke(e);
        }
        catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException or HttpRequestException)
        {
            // Disposed under way, or a failure a read of the application's will meet too: nothing for a write to learn.
        }
    }

    /// <summary>
    /// Under <see cref="_gate"/>, the watch's zero-byte read having ended: the free end of the read-ahead (the unread bytes
    /// moved to its start), empty when it is full.
    /// </summary>
    private Memory<byte> RoomAhead()
    {
        _ahead ??= new byte[ReadAheadSize];
        if (_aheadFrom > 0)
        {
            // Reads take from _aheadFrom under the lock, and the watch is not reading into the rest.
            _ahead.AsSpan(_aheadFrom, _aheadTo - _aheadFrom).CopyTo(_ahead);
            _aheadTo -= _aheadFrom;
            _aheadFrom = 0;
        }
        return _ahead.AsMemory(_aheadTo);
    }

    private async ValueTask<int> WatchedReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return Watched(await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Length);
        }
        catch (IOException e)
        {
            Failed(e);
            throw;
        }
    }

    /// <summary>A read of <paramref name="asked"/> bytes returned <paramref name="read"/>: a byte, or a clean end, ends the watch.</summary>
    private int Watched(int read, int asked)
    {
        if (read > 0 || asked > 0)
        {
            _watch = null;
        }
        return read;
    }

    private void Failed(IOException e)
    {
        // A read and a write may fail at once: the relay's break is counted once.
        var watch = Interlocked.Exchange(ref _watch, null);
        if (watch is not null && IsRelayBreak(e))
        {
            watch();
        }
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_watchWrites)
        {
            // The HTTP/2 client's own synchronous write waits on its asynchronous one, too.
            WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
            return;
        }
        try
        {
            Inner.Write(buffer, offset, count);
        }
        catch (Exception e) when (WriteFailed(e))
        {
            throw Watched(Broken(e));
        }
        Flush();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // A token cancelled already cancels no write under way: refused here, as any stream refuses it, since the HTTP/2
        // client would take it for the end of every write (see WatchedWriteAsync).
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        if (_watchWrites && WritesCancelled)
        {
            throw new IOException($"the tunnel through relay {relay} takes no more writes: a write was cancelled while it waited, which ends an HTTP/2 tunnel's sending");
        }
        if (_watchWrites)
        {
            Begin(ref _writeUnderWay, "write");
        }
        try
        {
            try
            {
                await (_watchWrites ? WatchedWriteAsync(buffer, cancellationToken) : Inner.WriteAsync(buffer, cancellationToken)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException && Volatile.Read(ref _disposed))
            {
                // Disposed under the write, which fails by the stream's reset or its disposing, whichever comes first: said of
                // the tunnel, as a read's is, not of the HTTP client's part that noticed.
                throw new ObjectDisposedException(GetType().FullName);
            }
            catch (Exception e) when (WriteFailed(e))
            {
                throw Watched(Broken(e));
            }
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (_watchWrites)
            {
                Volatile.Write(ref _writeUnderWay, 0);
            }
        }
    }

    /// <summary>
    /// Whether the application cancelled a write while it waited: the HTTP/2 client then sends nothing more on the stream,
    /// and every write after fails. Told from a read's failure (<see cref="Broke"/>), which sets its cause before it cancels.
    /// </summary>
    private bool WritesCancelled => Volatile.Read(ref _writeEnd) is { IsCancellationRequested: true } && Volatile.Read(ref _brokenBy) is null;

    /// <summary>
    /// A write that, if it has to wait, ends when the zero-byte read fails (see the remarks). The HTTP/2 client takes a
    /// write's cancellation as the end of all writes (it cancels the stream's sending for good), so the application's
    /// cancelling ends the same token.
    /// </summary>
    private async ValueTask WatchedWriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        var writeEnd = Volatile.Read(ref _writeEnd);
        if (writeEnd is null)
        {
            // Writes come one at a time; the exchange is the fence that Broke's pairs with.
            writeEnd = new CancellationTokenSource();
            Interlocked.Exchange(ref _writeEnd, writeEnd);
        }
        using var cancelled = cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), writeEnd);
        if (Volatile.Read(ref _brokenBy) is { } already)
        {
            throw Broken(already);
        }
        var write = Inner.WriteAsync(buffer, writeEnd.Token);
        var waits = !write.IsCompleted;
        CancellationTokenRegistration[] closed = [];
        if (waits)
        {
            StartProbe();
            closed = WatchConnection();
        }
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (Volatile.Read(ref _brokenBy) is { } broken && !cancellationToken.IsCancellationRequested)
        {
            throw Broken(broken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        finally
        {
            foreach (var registration in closed)
            {
                registration.Dispose();
            }
            if (waits)
            {
                // Writes come one at a time: only this one can have set it.
                lock (_gate)
                {
                    _writeWaiting = false;
                    WakeProbe();
                }
            }
        }
    }

    /// <summary>
    /// For a waiting write: its connection's close fails it (see <see cref="Broke"/>), the only sign the HTTP client gives
    /// once the relay has ended its side of the tunnel (the stream is done then: the zero-byte read ends at once, and tells
    /// of no reset). Registered for the write's wait alone: a tunnel the application left does not stay reachable from its
    /// connection.
    /// </summary>
    private CancellationTokenRegistration[] WatchConnection()
    {
        var open = connectionsClosed!.Length;
        return [.. connectionsClosed.Select(closed => closed.UnsafeRegister(_ =>
        {
            if (Interlocked.Decrement(ref open) == 0)
            {
                Broke(new HttpIOException(HttpRequestError.ResponseEnded, $"the connection to relay {relay} has closed"));
            }
        }, null))];
    }

    public override void Flush()
    {
        try
        {
            Inner.Flush();
        }
        catch (Exception e) when (WriteFailed(e))
        {
            throw Watched(Broken(e));
        }
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (WriteFailed(e))
        {
            throw Watched(Broken(e));
        }
    }

    /// <summary>
    /// Whether a write's failure is to be caught and passed on in Passage's words (see <see cref="Broken"/>): the stream's
    /// <see cref="IOException"/>, or what the HTTP client passes on as it came (see <see cref="CameAsItWas"/>). One said so
    /// already goes on as it is, watched here.
    /// </summary>
    private bool WriteFailed(Exception e)
    {
        if (e is TunnelBrokeException said)
        {
            Watched(said);
            return false;
        }
        return e is IOException || CameAsItWas(e);
    }

    /// <summary>
    /// A write that failed before the tunnel's first byte is watched as a read is (see <see cref="Failed"/>): an
    /// application that speaks first (a TLS client's hello) may never read a tunnel whose connection the relay dropped.
    /// (A relay's resetting the stream fails no write: the .NET client drops what is written after; a read sees the reset.)
    /// </summary>
    private IOException Watched(IOException failure)
    {
        if (_watch is not null)
        {
            Failed(failure);
        }
        return failure;
    }

    /// <summary>
    /// True for a write's failure that the HTTP client passes on as it came: a write waiting to be sent when the relay broke
    /// the connection gets the connection's failure itself (an <see cref="HttpRequestException"/> for a header the client
    /// refused, an HPACK decoding failure for a block over the limit), not the <see cref="IOException"/> of a stream.
    /// </summary>
    private static bool CameAsItWas(Exception e) => e is HttpRequestException || RelayLink.IsHttpClientsOwn(e);

    /// <summary>
    /// A write's failure as the application expects a stream's, an <see cref="IOException"/>, that says what broke and at
    /// which relay, the HTTP client's own failure inside.
    /// </summary>
    private TunnelBrokeException Broken(Exception e) => new($"the tunnel through relay {relay} broke: {WhatBroke(e)}", e);

    /// <summary>What broke, as the HTTP client's <paramref name="failure"/> tells.</summary>
    private static string WhatBroke(Exception failure) => Within<HttpProtocolException>(failure)?.ErrorCode switch
    {
        ConnectError => "the destination reset its connection (the relay reset the tunnel with CONNECT_ERROR)",
        { } code => $"the relay reset the tunnel (HTTP/2 error code 0x{code:x})",
        null when Within<HttpIOException>(failure) is { HttpRequestError: HttpRequestError.ResponseEnded } => "the connection to the relay ended",
        null => "the connection to the relay failed",
    };

    /// <summary>A write's failure said in Passage's words (see <see cref="Broken"/>).</summary>
    private sealed class TunnelBrokeException(string message, Exception inner) : IOException(message, inner);

    protected override void Dispose(bool disposing)
    {
        Disposed();
        base.Dispose(disposing);
        if (disposing)
        {
            exchange?.Dispose();
        }
    }

    /// <summary>The application is done with the tunnel: what it reads from now on fails as a disposed stream's, read ahead or not.</summary>
    private void Disposed()
    {
        _watch = null;
        lock (_gate)
        {
            _disposed = true;
            WakeProbe();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        Disposed();
        await base.DisposeAsync().ConfigureAwait(false);
        exchange?.Dispose();
    }
}
