using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Passage.Transport;

/// <summary>
/// Builders for the Kestrel servers inside Passage (the admin listener, the HTTP/2 CONNECT server,
/// both ends of the tunnel): configured by Passage's code alone.
/// </summary>
/// <remarks>
/// The framework's default builders also read <c>appsettings.json</c> from the working directory
/// and the environment variables, and watch the working directory's whole tree for changes to that
/// file. So a stray file or variable (a <c>Kestrel:Endpoints</c> entry, say) would have opened
/// listeners nobody asked for, and a relay started in a large tree held an inotify watch on every
/// directory of it, once per server (and failed to start where the inotify limits are low).
/// </remarks>
internal static class KestrelHost
{
    /// <summary>
    /// A builder with Kestrel and routing and nothing else: no configuration sources, no file
    /// watching, logging through <paramref name="loggerFactory"/> (Passage's own).
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(ILoggerFactory loggerFactory)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], EnvironmentName = "Production" });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Services.AddLogging();
        builder.Services.AddSingleton(loggerFactory);
        return builder;
    }
}
