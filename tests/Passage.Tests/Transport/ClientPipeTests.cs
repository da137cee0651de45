using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Passage.Tests.Infrastructure;
using Passage.Transport.Handoff;

namespace Passage.Tests.Transport;

/// <summary>
/// The pipes Kestrel reads and writes a handed-off connection through: a client that has gone is reported as Kestrel's
/// own transports report it, every other failure as it was.
/// </summary>
public sealed class ClientPipeTests
{
    [Fact]
    public async Task Writing_to_a_client_that_reset_its_connection_ends_the_flush_as_completed_not_thrown()
    {
        var (connector, accepted) = await Loopback.ConnectedPairAsync();
        using var _ = connector;
        await using var stream = new NetworkStream(accepted, ownsSocket: true);
        var gone = 0;
        var writer = new ClientPipeWriter(PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)), () => gone++);
        connector.LingerState = new LingerOption(true, 0);
        connector.Close();

        // The first writes may still go out before the reset arrives; one soon fails (reset or broken pipe).
        FlushResult result;
        using var cts = new CancellationTokenSource(Timeouts.Default);
        do
        {
            result = await writer.WriteAsync(new byte[4096]);
            if (!result.IsCompleted)
            {
                await Task.Delay(10, cts.Token);
            }
        }
        while (!result.IsCompleted);
        // And so does every later one, and completing the writer (which flushes) does not throw either.
        Assert.True((await writer.WriteAsync(new byte[4096])).IsCompleted);
        writer.GetSpan(1)[0] = 1;
        writer.Advance(1);
        await writer.CompleteAsync();
        // The connection is told once, at the first failure, so that it is torn down then.
        Assert.Equal(1, gone);
    }

    [Fact]
    public async Task Any_other_write_failure_still_throws()
    {
        var failure = new IOException("the device failed");
        var writer = new ClientPipeWriter(PipeWriter.Create(new FailingStream(failure)));
        writer.GetSpan(1)[0] = 1;
        writer.Advance(1);
        Assert.Same(failure, await Assert.ThrowsAsync<IOException>(async () => await writer.FlushAsync()));
    }

    [Fact]
    public async Task A_reset_read_from_a_bare_socket_reaches_kestrel_as_a_connection_reset()
    {
        var reset = new SocketException((int)SocketError.ConnectionReset);
        var reader = new ClientPipeReader(PipeReader.Create(new FailingStream(reset)));
        var thrown = await Assert.ThrowsAsync<ConnectionResetException>(async () => await reader.ReadAsync());
        Assert.Same(reset, thrown.InnerException);

        var other = new SocketException((int)SocketError.NoBufferSpaceAvailable);
        reader = new ClientPipeReader(PipeReader.Create(new FailingStream(other)));
        Assert.Same(other, await Assert.ThrowsAsync<SocketException>(async () => await reader.ReadAsync()));
    }

    [Theory]
    [InlineData(SocketError.ConnectionReset, true)]
    [InlineData(SocketError.Shutdown, true)]
    [InlineData(SocketError.ConnectionAborted, true)]
    [InlineData(SocketError.OperationAborted, true)]
    [InlineData(SocketError.NoBufferSpaceAvailable, false)]
    [InlineData(SocketError.AccessDenied, false)]
    public void A_socket_failure_says_the_client_has_gone_only_for_resets_and_aborts(SocketError error, bool gone)
    {
        var socket = new SocketException((int)error);
        Assert.Equal(gone, ClientGone.Is(socket));
        Assert.Equal(gone, ClientGone.Is(new IOException("The write operation failed, see inner exception.", socket)));
        Assert.False(ClientGone.Is(new IOException("no cause")));
        Assert.False(ClientGone.Is(new InvalidOperationException("a bug", socket)));
    }

    /// <summary>A stream whose every read and write fails with one exception.</summary>
    private sealed class FailingStream(Exception failure) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw failure;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromException<int>(failure);

        public override void Write(byte[] buffer, int offset, int count) => throw failure;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromException(failure);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
