using System.Buffers;
using Passage.Client.Socks5;

namespace Passage.Tests.Client.Socks5;

/// <summary>The RFC 1929 username/password request, read where it lies.</summary>
public sealed class Socks5ProtocolTests
{
    /// <summary>
    /// The name and password come back as where they lie, once the request is whole, and reading them allocates
    /// nothing: no copy of the password, in a string or otherwise.
    /// </summary>
    [Fact]
    public void A_username_password_request_is_read_where_it_lies_without_a_copy()
    {
        byte[] request = [1, 5, .. "alice"u8, 7, .. "won:der"u8, 5, 1];
        for (var length = 0; length < request.Length - 2; length++)
        {
            Assert.Equal(Socks5Protocol.ParseStatus.Incomplete, Socks5Protocol.ParseUserPass(new ReadOnlySequence<byte>(request, 0, length), out _, out _, out _));
        }
        var whole = new ReadOnlySequence<byte>(request);
        Socks5Protocol.ParseUserPass(whole, out _, out _, out _);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var status = Socks5Protocol.ParseUserPass(whole, out var user, out var password, out var consumed);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        Assert.Equal(Socks5Protocol.ParseStatus.Complete, status);
        Assert.Equal("alice"u8, request.AsSpan(user));
        Assert.Equal("won:der"u8, request.AsSpan(password));
        Assert.Equal(request.Length - 2, consumed);
    }
}
