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

    /// <summary>
    /// Parses <paramref name="bytes"/> as a relay reads a head that arrives in pieces: a buffer that grows by the next of
    /// <paramref name="steps"/> (cycled) bytes at a time, each parse resuming where the last stopped. At every length the
    /// verdict must be that of a parse from scratch (the test fails where it is not); returns the first verdict that is not
    /// <see cref="Http1ParseStatus.Incomplete"/>, or the last.
    /// </summary>
    public static Http1ParseResult ParseResumed(byte[] bytes, Http1ParseLimits limits, params int[] steps)
    {
        var progress = default(Http1ParseProgress);
        var result = default(Http1ParseResult);
        for (int length = 0, step = 0; length < bytes.Length;)
        {
            length = Math.Min(bytes.Length, length + steps[step++ % steps.Length]);
            var prefix = new ReadOnlySequence<byte>(bytes, 0, length);
            result = Http1ConnectParser.Parse(prefix, limits, ref progress);
            var fresh = Http1ConnectParser.Parse(prefix, limits);
            Assert.True(
                result.Status == fresh.Status && result.HeadLength == fresh.HeadLength && result.Refusal == fresh.Refusal
                && result.Detail == fresh.Detail && Equals(result.Request, fresh.Request),
                $"{length} of {bytes.Length} bytes in steps of {string.Join(",", steps)}: resumed {result}, from scratch {fresh}");
            if (result.Status != Http1ParseStatus.Incomplete)
            {
                break;
            }
        }

        return result;
    }

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
