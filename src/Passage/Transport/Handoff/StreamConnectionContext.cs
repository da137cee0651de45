using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Passage.Transport.Handoff;

/// <summary>
/// A Kestrel connection over a <see cref="Stream"/> that Passage already owns (typically an
/// <see cref="System.Net.Security.SslStream"/> it terminated). Kestrel reads and writes through pipes
/// over the stream, which tell it of a client gone as its own transports do (<see cref="ClientPipeReader"/>,
/// <see cref="ClientPipeWriter"/>); disposing the context disposes the stream and runs the close callback.
/// </summary>
internal sealed class StreamConnectionContext : ConnectionContext, IConnectionLifetimeFeature, IConnectionEndPointFeature, IConnectionIdFeature, IConnectionItemsFeature, IConnectionTransportFeature
{
    private readonly Stream _stream;
    private readonly Action? _onClosed;
    private readonly CancellationTokenSource _closed = new();
    private int _disposed;
    private bool _failed;

    public StreamConnectionContext(string connectionId, Stream stream, EndPoint? local, EndPoint? remote, Action? onClosed = null)
    {
        _stream = stream;
        _onClosed = onClosed;
        ConnectionId = connectionId;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        Transport = new DuplexPipe(
            new ClientPipeReader(PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true)), () => Volatile.Write(ref _failed, true)),
            new ClientPipeWriter(PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)), () => Abort(new ConnectionAbortedException("the client has gone"))));
        Features = new FeatureCollection();
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    /// <summary>Whether the connection broke rather than ended: a read from the client failed, or it was aborted.</summary>
    public bool Failed => Volatile.Read(ref _failed);

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Volatile.Write(ref _failed, true);
        // Tearing the stream down fails Kestrel's pending reads and writes at once.
        _stream.Dispose();
        SignalClosed();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        try
        {
            await Transport.Input.CompleteAsync().ConfigureAwait(false);
            // Completing the writer flushes what is buffered; on an aborted transport that fails.
            await Transport.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            // The transport is gone: nothing left to flush.
        }
        finally
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
            SignalClosed();
            _closed.Dispose();
            _onClosed?.Invoke();
        }
    }

    private void SignalClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already disposed.
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
