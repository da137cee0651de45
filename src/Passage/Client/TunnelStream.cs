using System.Diagnostics;
using Passage.Transport;

namespace Passage.Client;

/// <summary>
/// The application's end of a tunnel: reads and writes go to the relay's tunnel stream, every write
/// is flushed (an HTTP/2 request body is otherwise held back), and disposal ends the exchange.
/// </summary>
/// <remarks>
/// With <c>brokeEarly</c>, the tunnel also watches for a relay that answers 200 and then breaks the tunnel before it
/// has delivered a byte (see <see cref="BrokeEarly"/>): <c>brokeEarly</c> is called, once, when a read fails so. The
/// application gets the read's error either way. The watch ends with the first byte, a clean end, or a failure: one
/// field check per read after that.
/// </remarks>
internal sealed class TunnelStream(Stream inner, IDisposable? exchange, Action? brokeEarly = null) : DelegatingStream(inner)
{
    /// <summary>How long after the relay's 200 a failure before its first byte is still taken for the relay's.</summary>
    public static readonly TimeSpan EarlyWindow = TimeSpan.FromSeconds(10);

    /// <summary>RFC 9113 §8.5: the error code with which a proxy resets a tunnel's stream after the destination's TCP reset.</summary>
    private const long ConnectError = 0xa;

    private readonly long _opened = Stopwatch.GetTimestamp();
    private Action? _watch = brokeEarly;

    /// <summary>
    /// True when a read's failure (an I/O error: the application's own cancelling or disposing is none) on a tunnel that has delivered no byte yet is the relay's: it came within
    /// <see cref="EarlyWindow"/> of the 200, and it is no reset with CONNECT_ERROR (RFC 9113 §8.5: the destination
    /// reset its connection, which another relay would see too). A relay that drops the connection or resets the stream
    /// otherwise has opened a tunnel that does not work.
    /// </summary>
    internal static bool BrokeEarly(IOException failure, TimeSpan sinceOpened)
    {
        if (sinceOpened > EarlyWindow)
        {
            return false;
        }
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
        var watch = _watch;
        _watch = null;
        if (watch is not null && BrokeEarly(e, Stopwatch.GetElapsedTime(_opened)))
        {
            watch();
        }
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        Inner.Write(buffer, offset, count);
        Inner.Flush();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            exchange?.Dispose();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        exchange?.Dispose();
    }
}
