using System.Net.Http;
using System.Threading.Tasks.Sources;
using Passage.Client;
using Passage.Transport;

namespace Passage.Tests.Client;

public sealed class RelayConnectionsTests
{
    /// <summary>
    /// A connection's read that completed by the time it is looked at, but through its source (as a socket's read that
    /// completes on another thread just after it was started), is taken once, by its caller: its source is reused after
    /// that (a socket's for its next read). The connection's wrapper used to take its result to look at it and hand the
    /// same read on, which its caller (TLS, then the HTTP/2 connection) then failed to take.
    /// </summary>
    [Fact]
    public async Task A_read_complete_through_its_source_is_taken_once()
    {
        using var connections = new RelayConnections(new SocketsHttpHandler(), CancellationToken.None);
        await using var transport = new RelayConnections.Transport(connections, new CompletedThroughSource(5));
        Assert.Equal(5, await transport.ReadAsync(new byte[8]));
        Assert.Equal(0, await transport.ReadAsync(Memory<byte>.Empty));
    }

    /// <summary>A stream whose reads complete at once through a source of its own, reused once taken, as a socket's are.</summary>
    private sealed class CompletedThroughSource(int count) : DelegatingStream(Stream.Null), IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _core.Reset();
            _core.SetResult(buffer.IsEmpty ? 0 : count);
            return new ValueTask<int>(this, _core.Version);
        }

        public int GetResult(short token)
        {
            var result = _core.GetResult(token);
            _core.Reset();
            return result;
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
