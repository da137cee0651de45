namespace Passage.Tests.Tunnel;

/// <summary>A read-only stream of <see cref="TunnelBackend.Pattern"/> bytes, produced as read: large bodies without large buffers.</summary>
internal sealed class SizedPatternStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = (int)Math.Min(count, length - _position);
        if (n <= 0)
        {
            return 0;
        }
        TunnelBackend.Pattern(_position, n).CopyTo(buffer, offset);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = (int)Math.Min(buffer.Length, length - _position);
        if (n <= 0)
        {
            return ValueTask.FromResult(0);
        }
        TunnelBackend.Pattern(_position, n).CopyTo(buffer.Span);
        _position += n;
        return ValueTask.FromResult(n);
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>SHA-256 (hex) and length of the first <paramref name="length"/> pattern bytes.</summary>
    public static string Hash(long length)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        for (long at = 0; at < length;)
        {
            var n = (int)Math.Min(1 << 20, length - at);
            sha.AppendData(TunnelBackend.Pattern(at, n));
            at += n;
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }
}
