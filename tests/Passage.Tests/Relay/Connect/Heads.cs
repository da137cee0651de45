using System.Buffers;
using System.Text;
using Passage.Relay.Connect;

namespace Passage.Tests.Relay.Connect;

/// <summary>Request heads written by hand, and a parse that fails the test on any exception.</summary>
internal static class Heads
{
    /// <summary>A minimal valid CONNECT head.</summary>
    public const string Minimal = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";

    /// <summary>Each char one byte (Latin-1), so tests can write any byte as <c>\u00XX</c>.</summary>
    public static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);

    /// <summary>Parses <paramref name="bytes"/> in one segment with the default limits.</summary>
    public static Http1ParseResult Parse(byte[] bytes, Http1ParseLimits? limits = null) =>
        Http1ConnectParser.Parse(new ReadOnlySequence<byte>(bytes), limits ?? Http1ParseLimits.Default);

    /// <summary>Parses <paramref name="text"/> in one segment with the default limits.</summary>
    public static Http1ParseResult Parse(string text, Http1ParseLimits? limits = null) => Parse(Bytes(text), limits);

    /// <summary>The Proxy-Authorization value of <paramref name="request"/>, read from the <paramref name="bytes"/> it was parsed from.</summary>
    public static string? ProxyAuthorization(byte[] bytes, ConnectRequest request) =>
        request.ProxyAuthorization is { } value ? Encoding.Latin1.GetString(bytes.AsSpan(value)) : null;

    /// <summary>Parses <paramref name="text"/> expecting an error, and returns its reason.</summary>
    public static RefusalReasonAndDetail Refusal(string text, Http1ParseLimits? limits = null)
    {
        var result = Parse(text, limits);
        Assert.True(result.Status == Http1ParseStatus.Error, $"expected an error, got {result}");
        Assert.NotNull(result.Refusal);
        Assert.False(string.IsNullOrEmpty(result.Detail));
        return new(result.Refusal.Value, result.Detail);
    }

    public readonly record struct RefusalReasonAndDetail(Passage.Relay.RefusalReason Reason, string Detail);
}
