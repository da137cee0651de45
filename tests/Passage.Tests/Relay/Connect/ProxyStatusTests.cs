using System.Buffers;
using System.Text;
using Passage.Relay;
using Passage.Relay.Connect;

namespace Passage.Tests.Relay.Connect;

/// <summary>The Proxy-Status value (RFC 9209 §2) as an RFC 8941 list: tokens, escaped and bounded strings.</summary>
public sealed class ProxyStatusTests
{
    [Fact]
    public void Reason_with_details()
    {
        Assert.Equal("passage; error=dns_error; details=\"no such name\"", ProxyStatus.Format(RefusalReason.DnsError, "no such name"));
    }

    [Fact]
    public void Without_details_there_is_no_details_parameter()
    {
        Assert.Equal("passage; error=connection_timeout", ProxyStatus.Format(RefusalReason.UpstreamTimeout, null));
        Assert.Equal("passage; error=connection_timeout; details=\"\"", ProxyStatus.Format(RefusalReason.UpstreamTimeout, ""));
    }

    [Theory]
    [InlineData("say \"hi\"", "\"say \\\"hi\\\"\"")]
    [InlineData("C:\\path\\", "\"C:\\\\path\\\\\"")]
    [InlineData("a\r\nb\tc\u0000d\u007fe", "\"a??b?c?d?e\"")]
    [InlineData("caf\u00e9 \u4e2d", "\"caf? ?\"")]
    [InlineData("smile \U0001F600!", "\"smile ?!\"")]
    [InlineData(" ~printable~ ", "\" ~printable~ \"")]
    public void Details_are_escaped_and_printable_ascii_only(string details, string expected)
    {
        // RFC 8941 §3.3.3: sf-string holds %x20-7E only, with DQUOTE and "\" escaped.
        Assert.Equal($"passage; error=http_request_error; details={expected}", ProxyStatus.Format(RefusalReason.MalformedRequest, details));
    }

    [Fact]
    public void A_lone_surrogate_is_one_replacement()
    {
        // Built at run time: attribute arguments cannot carry an unpaired surrogate.
        var details = "lone " + (char)0xD800 + " high, lone " + (char)0xDC00 + " low";

        Assert.EndsWith("details=\"lone ? high, lone ? low\"", ProxyStatus.Format(RefusalReason.DnsError, details));
    }

    [Fact]
    public void Long_details_are_cut_and_marked()
    {
        var exact = new string('x', ProxyStatus.MaxStringLength);
        Assert.EndsWith($"details=\"{exact}\"", ProxyStatus.Format(RefusalReason.DnsError, exact));

        var longer = ProxyStatus.Format(RefusalReason.DnsError, new string('x', 10_000));
        var quoted = longer[longer.IndexOf('"')..];
        Assert.Equal(ProxyStatus.MaxStringLength + 2, quoted.Length);
        Assert.EndsWith("...\"", quoted);

        // A cut never splits an escape.
        var escapes = ProxyStatus.Format(RefusalReason.DnsError, new string('"', 1000));
        var inner = escapes[(escapes.IndexOf('"') + 1)..^1];
        Assert.InRange(inner.Length, 0, ProxyStatus.MaxStringLength);
        Assert.Matches("^(\\\\\")*\\.\\.\\.$", inner);
    }

    [Theory]
    [InlineData("passage", "passage")]
    [InlineData("relay-1.example.net", "relay-1.example.net")]
    [InlineData("*", "*")]
    [InlineData("ID@host:443/x", "\"ID@host:443/x\"")]
    [InlineData("1relay", "\"1relay\"")]
    [InlineData("my relay", "\"my relay\"")]
    [InlineData("", "\"\"")]
    [InlineData("r\u00e9\"lay", "\"r?\\\"lay\"")]
    public void Proxy_name_is_a_token_or_a_string(string name, string expected)
    {
        // RFC 9209 §2: the member is the proxy's name, an sf-token or sf-string; sf-token is ALPHA / "*" first.
        Assert.Equal($"{expected}; error=dns_error", ProxyStatus.Format(name, "dns_error", null));
    }

    [Theory]
    [InlineData("")]
    [InlineData("DNS_ERROR")]
    [InlineData("dns error")]
    [InlineData("1dns")]
    [InlineData("dns\"error")]
    public void Invalid_error_types_are_a_caller_bug(string errorType)
    {
        Assert.Throws<ArgumentException>(() => ProxyStatus.Format("passage", errorType, null));
    }

    [Fact]
    public void Writing_into_a_buffer_gives_the_same_bytes()
    {
        var output = new ArrayBufferWriter<byte>();
        output.Write("x"u8);

        ProxyStatus.Write(output, "passage", "dns_error", "a \"b\"");

        Assert.Equal("xpassage; error=dns_error; details=\"a \\\"b\\\"\"", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void Every_value_for_every_reason_is_ascii_without_line_breaks()
    {
        var nasty = "\r\nSet-Cookie: x=1\r\n\r\n\u00ff\"\\" + new string('z', 500);
        foreach (var reason in Enum.GetValues<RefusalReason>())
        {
            var value = ProxyStatus.Format(reason, nasty);
            Assert.True(Ascii.IsValid(value), value);
            Assert.DoesNotContain('\r', value);
            Assert.DoesNotContain('\n', value);
            Assert.InRange(value.Length, 1, 400);
        }
    }
}
