using System.Buffers;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;
using Passage.Transport;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// The reader's pooled buffer has one owner at a time: disposing the reader while a read is waiting for bytes (the
/// server end disposes a request's reader when the answer is done, while the body's copy may still be reading) must
/// not hand the buffer to someone else, or the bytes that read brings in land in another request's array.
/// </summary>
public sealed class Http1ReaderTests
{
    [Fact]
    public async Task Bytes_a_read_brings_in_after_disposal_never_land_in_an_array_handed_out_again()
    {
        var (sender, accepted) = await Loopback.ConnectedPairAsync();
        using (sender)
        using (accepted)
        {
            var reader = new Http1Reader(new NetworkStream(accepted, ownsSocket: false));
            // Rents the buffer and starts a read into it, which waits: nothing has been sent.
            var line = reader.ReadLineAsync(100, CancellationToken.None);
            Assert.False(line.IsCompleted);

            reader.Dispose();
            // The next user of the pool on this thread: the array a disposal returns is the one it gets.
            var other = ArrayPool<byte>.Shared.Rent(8 * 1024);
            try
            {
                other.AsSpan().Clear();
                await Loopback.SendAllAsync(sender, "private\r\n"u8.ToArray());
                sender.Shutdown(SocketShutdown.Send);
                try
                {
                    await line.AsTask().WaitAsync(Timeouts.Default);
                }
                catch (ObjectDisposedException)
                {
                    // Either way: the read may end with its line or say the reader is gone.
                }
                Assert.True(other.AsSpan().IndexOf("private"u8) < 0, "bytes read after disposal landed in an array rented by someone else");
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(other);
            }
        }
    }

    [Fact]
    public async Task A_disposed_reader_refuses_further_line_reads()
    {
        var reader = new Http1Reader(new MemoryStream("a\r\nb\r\n"u8.ToArray()));
        Assert.Equal("a", await reader.ReadLineAsync(10, CancellationToken.None));
        reader.Dispose();
        reader.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await reader.ReadLineAsync(10, CancellationToken.None));
    }

    [Fact]
    public async Task A_chunk_size_line_cut_off_holds_only_its_bytes_while_the_rest_is_waited_for()
    {
        var (sender, accepted) = await Loopback.ConnectedPairAsync();
        using (sender)
        using (accepted)
        {
            var watched = new ReadWatch(new NetworkStream(accepted, ownsSocket: false));
            using var reader = new Http1Reader(watched);
            watched.Reader = reader;
            var body = new ChunkedReadStream(reader);
            await Loopback.SendAllAsync(sender, "5"u8.ToArray());

            // Reads: the wait for the body's first bytes (zero-byte), the one that brings in the "5", then the one that
            // waits for the rest of the line, which may be forever: the peer sends nothing more.
            var content = new byte[16];
            var read = body.ReadAsync(content);
            var held = await watched.HeldAtReadAsync(3).WaitAsync(Timeouts.Default);
            Assert.False(read.IsCompleted);
            Assert.InRange(held, 1, 64);

            await Loopback.SendAllAsync(sender, "\r\nhello\r\n0\r\n\r\n"u8.ToArray());
            Assert.Equal(5, await read.AsTask().WaitAsync(Timeouts.Default));
            Assert.Equal("hello"u8.ToArray(), content[..5]);
            Assert.Equal(0, await body.ReadAsync(content).AsTask().WaitAsync(Timeouts.Default));
            Assert.Equal(0, reader.HeldBufferLength);
        }
    }

    /// <summary>Notes, as each read begins, how large an array the reader holds.</summary>
    private sealed class ReadWatch(Stream inner) : DelegatingStream(inner)
    {
        private readonly List<int> _held = [];
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Http1Reader? Reader { get; set; }

        /// <summary>What the reader held when its <paramref name="number"/>th read (from 1) began.</summary>
        public async Task<int> HeldAtReadAsync(int number)
        {
            while (true)
            {
                Task next;
                lock (_held)
                {
                    if (_held.Count >= number)
                    {
                        return _held[number - 1];
                    }
                    next = _next.Task;
                }
                await next;
            }
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            TaskCompletionSource began;
            lock (_held)
            {
                _held.Add(Reader?.HeldBufferLength ?? 0);
                began = _next;
                _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            began.SetResult();
            return base.ReadAsync(buffer, cancellationToken);
        }
    }
}
