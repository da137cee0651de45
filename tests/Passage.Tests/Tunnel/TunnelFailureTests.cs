using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

public sealed class TunnelFailureTests
{
    /// <summary>
    /// A request whose HTTP/2 stream the other end resets before answering (Kestrel resets it with INTERNAL_ERROR when its
    /// handler aborts) fails as an HTTP protocol error named by its code: the HTTP client's words quote the code's name,
    /// and the details read "the answer is malformed: 'INTERNAL_ERROR'" for an answer that never came.
    /// </summary>
    [Fact]
    public async Task A_stream_reset_before_the_answer_is_said_as_one_with_its_code()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        await using var app = builder.Build();
        app.Run(context =>
        {
            context.Abort();
            return Task.CompletedTask;
        });
        await app.StartAsync().WaitAsync(Timeouts.Default);

        using var client = new HttpClient
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var thrown = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(app.Urls.First() + "/").WaitAsync(Timeouts.Default));

        var failure = TunnelFailure.From(thrown);
        Assert.Equal("http_protocol_error", failure.ErrorType);
        Assert.Equal("the request's stream was ended with INTERNAL_ERROR (0x2)", failure.Details);
    }
}
