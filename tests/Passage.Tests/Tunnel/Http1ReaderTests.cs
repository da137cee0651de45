using System.Buffers;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;
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
}
