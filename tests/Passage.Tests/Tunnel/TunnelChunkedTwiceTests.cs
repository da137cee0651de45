using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A body chunked twice (<c>Transfer-Encoding: chunked, chunked</c>, or two field lines naming chunked), which no sender may
/// send (RFC 9112 §6.1). Each HTTP stack on the way undoes the framing once, so the recipient got the body still chunked
/// once, with no field left to say so, and took the framing for the content.
/// </summary>
public sealed class TunnelChunkedTwiceTests
{
    /// <summary>The body "hello", chunked once and then chunked again.</summary>
    private const string ChunkedTwice = "f\r\n5\r\nhello\r\n0\r\n\r\n\r\n0\r\n\r\n";

    /// <summary>
    /// The application's request chunked twice reached the backend with <c>5\r\nhello\r\n0\r\n\r\n</c> for its content. It is
    /// answered 400 with the reason, the connection closed, and nothing reaches the backend.
    /// </summary>
    [Theory]
    [InlineData("Transfer-Encoding: chunked, chunked\r\n")]
    [InlineData("Transfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n")]
    public async Task A_request_chunked_twice_gets_400_and_the_connection_closed_and_never_reaches_the_backend(string codings)
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true);
        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, $"POST /hash HTTP/1.1\r\nHost: app.test\r\n{codings}\r\n{ChunkedTwice}"
            + "GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n", readToEnd: true);
        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.Contains("Proxy-Status: passage; error=http_request_error; details=\"the request's Transfer-Encoding names chunked more than once\"\r\n",
            answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Equal(0, backend.Requests);
    }

    /// <summary>
    /// The backend's answer chunked twice reached the application with the framing as its content, on the pooled way to the
    /// backend and on the one a request with trailers takes. It gets 502 with the reason (the field name in lower case: it crossed the link in HTTP/2).
    /// </summary>
    [Theory]
    [InlineData("GET /twice HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")]
    [InlineData("GET /twice-lines HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")]
    [InlineData("POST /twice HTTP/1.1\r\nHost: app.test\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n")]
    public async Task An_answer_chunked_twice_gets_502(string request)
    {
        var answer = await AnswerRefusedAsync(new Dictionary<string, string>
        {
            ["/twice"] = $"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n{ChunkedTwice}",
            ["/twice-lines"] = $"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{ChunkedTwice}",
        }, request, "the answer's Transfer-Encoding names chunked more than once");
        Assert.DoesNotContain("hello", answer, StringComparison.Ordinal);
    }

    /// <summary>
    /// Sends <paramref name="request"/> through a client end and a server end to a backend that answers each path of
    /// <paramref name="answers"/> with its raw answer: the application's answer, checked to be 502 with
    /// <paramref name="details"/> (the field name in lower case: it crossed the link in HTTP/2).
    /// </summary>
    internal static async Task<string> AnswerRefusedAsync(Dictionary<string, string> answers, string request, string details)
    {
        await using var backend = new RawBackend(answers);
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true);
        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, request, readToEnd: true);
        Assert.StartsWith("HTTP/1.1 502 ", answer, StringComparison.Ordinal);
        Assert.Contains($"proxy-status: passage; error=http_protocol_error; details=\"{details}\"\r\n", answer, StringComparison.Ordinal);
        return answer;
    }
}
