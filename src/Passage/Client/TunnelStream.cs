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
/// </remarks>
internal sealed class TunnelStream(Stream inner, IDisposable? exchange, Action? brokeBeforeFirstByte = null) : DelegatingStream(inner)
{
    /// <summary>RFC 9113 §8.5: the error code with which a proxy resets a tunnel's stream after the destination's TCP reset.</summary>
    private const long ConnectError = 0xa;

    private Action? _watch = brokeBeforeFirstByte;

    /// <summary>
    /// True when a read's or write's I/O failure (the application's own cancelling or disposing is none) is the relay's breaking
    /// the tunnel: anything but a reset with CONNECT_ERROR, by which a relay says the destination reset its connection
    /// (RFC 9113 §8.5), which another relay would see too.
    /// </summary>
    internal static bool IsRelayBreak(IOException failure)
    {
        for (Exception? inner = failure; inner is not null; inner = inner.InnerException)
        {
            if (inner is HttpProtocolException { ErrorCode: ConnectError })
            {
                return false;
            }
        }
        return true;
    }

    public override int Read(byte[] buffer, int offset, int count)
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
        _watch is null ? Inner.ReadAsync(buffer, cancellationToken) : WatchedReadAsync(buffer, cancellationToken);

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
        try
        {
            await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (WriteFailed(e))
        {
            throw Watched(Broken(e));
        }
        await FlushAsync(cancellationToken).ConfigureAwait(false);
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
    /// Whether a write's failure is to be caught and passed on as an <see cref="IOException"/> (see <see cref="CameAsItWas"/>);
    /// an <see cref="IOException"/> goes on as it came (not caught: its stack kept), watched here.
    /// </summary>
    private bool WriteFailed(Exception e)
    {
        if (e is IOException failure)
        {
            Watched(failure);
            return false;
        }
        return CameAsItWas(e);
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

    /// <summary>A write's failure as the application expects a stream's: an <see cref="IOException"/>, with the HTTP client's own inside.</summary>
    private static IOException Broken(Exception e) => new($"the tunnel's connection to the relay failed: {e.Message}", e);

    protected override void Dispose(bool disposing)
    {
        _watch = null;
        base.Dispose(disposing);
        if (disposing)
        {
            exchange?.Dispose();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _watch = null;
        await base.DisposeAsync().ConfigureAwait(false);
        exchange?.Dispose();
    }
}
