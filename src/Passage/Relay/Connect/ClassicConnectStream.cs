namespace Passage.Relay.Connect;

/// <summary>
/// The tunnel of a classic HTTP/2 CONNECT (RFC 9113 §8.5) as one stream: reads come from the request's content (the
/// client's DATA frames), writes go to the response's (the relay's), each flushed as it is written. Kestrel hands an
/// extended CONNECT's tunnel over as such a stream; a classic one's is these two halves of the exchange.
/// </summary>
/// <remarks>Disposing it leaves both halves to Kestrel, which ends them with the request.</remarks>
internal sealed class ClassicConnectStream(Stream requestBody, Stream responseBody) : Stream
{
    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => requestBody.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        requestBody.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        requestBody.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => responseBody.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        responseBody.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        responseBody.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => responseBody.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => responseBody.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
