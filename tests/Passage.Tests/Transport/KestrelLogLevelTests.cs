using System.Reflection;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Passage.Tests.Transport;

/// <summary>The lines Kestrel writes per HTTP/2 connection at Warning or above, as Passage's hosts were fitted to them.</summary>
public sealed class KestrelLogLevelTests
{
    /// <summary>
    /// Kestrel's HTTP/2 lines at Warning or above, by event id, are those reviewed. 60 (the output queue overflowing: rapid
    /// reset, which any client can cause) the hosts write at Warning and rationed. 61 (a response that ended with data left
    /// in its pipe) and 63 (the output loop's catch-all) are Kestrel's own invariants failing, Critical as Kestrel means them:
    /// no frame a client sends leads there. The flow-control queue overflowing (65, "exceeded the output flow control
    /// maximum queue size"), which a client that withholds WINDOW_UPDATE can cause, is Debug, below the default level. A
    /// Kestrel that raises one of its lines, or adds one, fails here, so that it is weighed as these were.
    /// </summary>
    [Fact]
    public void Kestrels_http2_lines_at_warning_or_above_are_the_ones_reviewed()
    {
        var http2Log = typeof(KestrelServerOptions).Assembly
            .GetType("Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Infrastructure.KestrelTrace+Http2Log", throwOnError: true)!;
        var lines = http2Log.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>())
            .OfType<LoggerMessageAttribute>()
            .ToList();

        // The lines are read at all: the type is still where it was, with its attributes.
        Assert.Contains(lines, l => l.EventId == 65 && l.Level == LogLevel.Debug);
        Assert.Equal([60, 61, 63], lines.Where(l => l.Level >= LogLevel.Warning).Select(l => l.EventId).Order());
    }
}
