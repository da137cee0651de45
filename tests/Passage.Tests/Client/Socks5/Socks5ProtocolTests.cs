using System.Buffers;
using Passage.Client.Socks5;

namespace Passage.Tests.Client.Socks5;

/// <summary>The RFC 1929 username/password request, read where it lies, and the CONNECT request.</summary>
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

    /// <summary>
    /// A domain name is read as the relay will read it: one it would refuse, an IPv6 literal with a zone among them (the
    /// relay takes none), is host unreachable without asking a relay (a zone used to go to the relay, whose 400 was a
    /// general failure), and an IPv6 literal in brackets is named without them.
    /// </summary>
    [Theory]
    [InlineData("fe80::1%lo", "")]
    [InlineData("[fe80::1%25lo]", "")]
    [InlineData("a/b", "")]
    [InlineData("a..example", "")]
    [InlineData("[::1]", "::1")]
    [InlineData("::1", "::1")]
    [InlineData("Origin.Test.", "Origin.Test.")]
    public void A_domain_name_is_read_as_the_relay_reads_it(string name, string expected)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(name);
        byte[] request = [Socks5Protocol.Version, Socks5Protocol.CommandConnect, 0, Socks5Protocol.AddressDomain, (byte)bytes.Length, .. bytes, 1, 187];
        var status = Socks5Protocol.ParseRequest(new ReadOnlySequence<byte>(request), out var host, out var port, out var consumed, out var error);
        if (expected.Length == 0)
        {
            Assert.Equal((Socks5Protocol.ParseStatus.Invalid, Socks5Protocol.Reply.HostUnreachable), (status, error));
        }
        else
        {
            Assert.Equal((Socks5Protocol.ParseStatus.Complete, expected, 443, request.Length), (status, host, port, consumed));
        }
    }

    /// <summary>
    /// A request's first wrong field, in the order of its bytes, names its reply (RFC 1928 §6): a command other than
    /// CONNECT is not supported (0x07) whatever its RSV and ATYP, as the README says of BIND and UDP ASSOCIATE; a
    /// CONNECT's RSV other than 0 is a general failure (0x01), its unknown ATYP 0x08. A BIND or UDP ASSOCIATE with an
    /// unknown ATYP or RSV was answered 0x08 or 0x01, as if the command were one this proxy serves. Each is refused as
    /// soon as its wrong byte is there.
    /// </summary>
    [Theory]
    [InlineData("05020005", 0x07)]     // BIND, unknown ATYP
    [InlineData("050300FF", 0x07)]     // UDP ASSOCIATE, unknown ATYP
    [InlineData("05030100", 0x07)]     // UDP ASSOCIATE, RSV 1
    [InlineData("05090201", 0x07)]     // unknown command, RSV 2
    [InlineData("05010100", 0x01)]     // CONNECT, RSV 1
    [InlineData("05010005", 0x08)]     // CONNECT, unknown ATYP
    public void A_requests_first_wrong_field_names_its_reply(string request, byte expected)
    {
        var bytes = Convert.FromHexString(request);
        var status = Socks5Protocol.ParseRequest(new ReadOnlySequence<byte>(bytes), out _, out _, out _, out var error);
        Assert.Equal((Socks5Protocol.ParseStatus.Invalid, expected), (status, (byte)error));
    }

    /// <summary>
    /// A greeting and the RFC 1929 request in one read: once the greeting is consumed, the request moves up, and no copy
    /// of it stays behind in the buffer, where its clearing once checked would not reach (it stayed until the handshake's
    /// end: with 255 methods offered, the whole password).
    /// </summary>
    [Fact]
    public void Consuming_the_greeting_leaves_no_copy_of_the_request_that_came_with_it()
    {
        var password = Enumerable.Repeat("secret"u8.ToArray(), 42).SelectMany(b => b).Take(255).ToArray();
        byte[] greeting = [Socks5Protocol.Version, 255, .. Enumerable.Repeat(Socks5Protocol.MethodUserPass, 255)];
        byte[] request = [1, 5, .. "alice"u8, (byte)password.Length, .. password];
        var buffer = new byte[1024];
        byte[] read = [.. greeting, .. request];
        read.CopyTo(buffer, 0);

        var filled = Socks5Session.Consume(buffer, read.Length, greeting.Length);

        Assert.Equal(request, buffer.AsSpan(0, filled));
        Assert.Equal(new byte[buffer.Length - filled], buffer.AsSpan(filled));
    }
}
