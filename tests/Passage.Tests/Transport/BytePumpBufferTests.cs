using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Runtime.InteropServices;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// The copy path's pooled buffer goes back to the pool only once nothing can write into it any more: a buffer another
/// connection rents next must never receive this one's bytes.
/// </summary>
public sealed class BytePumpBufferTests
{
    [Fact]
    public async Task A_buffer_that_a_waiting_read_still_fills_is_not_given_back_when_the_write_before_it_fails()
    {
        using var returns = new PoolReturns();
        // The client's source is readable, yet its second read waits (a proxied request body whose next bytes are framing
        // only, read and dropped, is such a source): meanwhile the pump sends what it has, and that write fails.
        var client = new ReadableYetWaiting("first bytes"u8.ToArray(), returns);
        var upstream = new Refusing();

        var result = await BytePump.RunAsync(client, upstream, new PumpOptions { ZeroCopy = false }).WaitAsync(Timeouts.Default);

        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Upstream, result.FailedSide);
        Assert.True(client.ReadWasPending, "the run never left a read waiting while it sent");
        // A read still waiting when the run ended may yet complete (the bytes it waited for came just before the abort): the
        // buffer it fills must not be in the pool by then.
        Assert.False(client.ReturnedWhileReading, "the buffer went back to the pool while a read into it was still waiting");
    }

    /// <summary>
    /// Zero-byte reads answer at once (data is there); the first read gets <c>first</c>, the second waits until the
    /// connection is aborted, and then fails, as a stream torn down under a read does.
    /// </summary>
    private sealed class ReadableYetWaiting(byte[] first, PoolReturns returns) : IDuplexConnection
    {
        private readonly TaskCompletionSource<int> _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _reads;
        private byte[]? _waitingInto;

        public bool ReadWasPending => Volatile.Read(ref _waitingInto) is not null;

        public bool ReturnedWhileReading { get; private set; }

        public System.Net.Sockets.Socket? Socket => null;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            if (buffer.IsEmpty)
            {
                return new ValueTask<int>(0);
            }
            if (Interlocked.Increment(ref _reads) == 1)
            {
                first.CopyTo(buffer);
                return new ValueTask<int>(first.Length);
            }
            Assert.True(MemoryMarshal.TryGetArray<byte>(buffer, out var segment));
            // Rented, so given back before (by whoever had it last): only a return from now on counts.
            returns.Forget(segment.Array!);
            Volatile.Write(ref _waitingInto, segment.Array);
            return new ValueTask<int>(_waiting.Task);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void Abort()
        {
            if (Volatile.Read(ref _waitingInto) is { } array)
            {
                ReturnedWhileReading |= returns.Returned(array);
            }
            _waiting.TrySetException(new IOException("aborted"));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>Every write fails, as to a peer that reset; its zero-byte read waits until it is aborted.</summary>
    private sealed class Refusing : IDuplexConnection
    {
        private readonly TaskCompletionSource<int> _read = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public System.Net.Sockets.Socket? Socket => null;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => new(_read.Task);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            ValueTask.FromException(new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionReset));

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void Abort() => _read.TrySetException(new IOException("aborted"));

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>The arrays given back to <see cref="System.Buffers.ArrayPool{T}"/> while it listens (by the pool's buffer id).</summary>
    private sealed class PoolReturns : EventListener
    {
        private const int BufferReturned = 3;
        private static readonly ConcurrentDictionary<int, bool> s_returned = new();

        public bool Returned(byte[] array) => s_returned.ContainsKey(array.GetHashCode());

        public void Forget(byte[] array) => s_returned.TryRemove(array.GetHashCode(), out _);

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "System.Buffers.ArrayPoolEventSource")
            {
                EnableEvents(eventSource, EventLevel.Verbose);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (eventData.EventId == BufferReturned && eventData.Payload is [int id, ..])
            {
                s_returned[id] = true;
            }
        }
    }
}
