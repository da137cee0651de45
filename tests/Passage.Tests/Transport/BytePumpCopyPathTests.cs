using System.Net.Sockets;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>The pump's scenarios on the pooled-buffer copy path, plus how that path waits.</summary>
public sealed class BytePumpCopyPathTests : BytePumpTests
{
    private protected override bool ZeroCopy => false;

    [Fact]
    public async Task An_idle_direction_waits_with_zero_byte_reads_and_holds_no_buffer()
    {
        var client = new RecordingConnection(new SocketConnection(_relayIn));
        var upstream = new RecordingConnection(new SocketConnection(_relayOut));
        var pump = BytePump.RunAsync(client, upstream, new PumpOptions { ZeroCopy = false });

        // Before any data, each side has been asked only for a zero-byte read.
        await Timeouts.WaitUntilAsync(() => client.ReadSizes.Count > 0 && upstream.ReadSizes.Count > 0);
        Assert.All(client.ReadSizes, size => Assert.Equal(0, size));
        Assert.All(upstream.ReadSizes, size => Assert.Equal(0, size));

        await Loopback.SendAllAsync(_app, "ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await Loopback.ReadToEndAsync(_server, limit: 4));
        // After a short read the buffer goes back: the next wait is a zero-byte read again.
        await Timeouts.WaitUntilAsync(() => client.ReadSizes.Count >= 3);
        Assert.Equal(0, client.ReadSizes[0]);
        Assert.True(client.ReadSizes[1] > 0);
        Assert.Equal(0, client.ReadSizes[2]);

        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);
        Assert.Equal(PumpEnd.Completed, (await pump.WaitAsync(Timeouts.Default)).End);
    }

    [Fact]
    public async Task A_source_that_hands_out_a_little_per_read_is_gathered_into_fewer_larger_sends()
    {
        // Like a TLS stream, which gives one record per read: here 1000 bytes at most.
        var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(60_000);
        await Loopback.SendAllAsync(_app, data);
        await Task.Delay(100); // all of it waiting in the relay's socket before the pump starts
        var client = new ChunkingConnection(new SocketConnection(_relayIn), 1000);
        var upstream = new RecordingConnection(new SocketConnection(_relayOut));
        var pump = BytePump.RunAsync(client, upstream, new PumpOptions { ZeroCopy = false });

        Assert.Equal(data, await Loopback.ReadToEndAsync(_server, limit: data.Length));
        // What the source had at once went out together, not a send per read.
        Assert.True(upstream.WriteSizes.Count <= 3, $"{upstream.WriteSizes.Count} sends: {string.Join(", ", upstream.WriteSizes)}");
        Assert.Equal(data.Length, upstream.WriteSizes.Sum());

        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(data.Length, result.ClientToUpstreamBytes);
    }

    /// <summary>Gives at most <paramref name="most"/> bytes per read.</summary>
    private sealed class ChunkingConnection(IDuplexConnection inner, int most) : IDuplexConnection
    {
        public Socket? Socket => null;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer[..Math.Min(buffer.Length, most)], cancellationToken);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.WriteAsync(data, cancellationToken);

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => inner.CompleteWritesAsync(cancellationToken);

        public void Abort() => inner.Abort();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>Passes everything through to a real connection and records the buffer size of each read.</summary>
    private sealed class RecordingConnection(IDuplexConnection inner) : IDuplexConnection
    {
        private readonly List<int> _reads = new();
        private readonly List<int> _writes = new();

        public IReadOnlyList<int> ReadSizes { get { lock (_reads) { return _reads.ToArray(); } } }

        public IReadOnlyList<int> WriteSizes { get { lock (_writes) { return _writes.ToArray(); } } }

        public Socket? Socket => null;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            lock (_reads)
            {
                _reads.Add(buffer.Length);
            }
            return inner.ReadAsync(buffer, cancellationToken);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            lock (_writes)
            {
                _writes.Add(data.Length);
            }
            return inner.WriteAsync(data, cancellationToken);
        }

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => inner.CompleteWritesAsync(cancellationToken);

        public void Abort() => inner.Abort();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }}
