using System.Buffers.Binary;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Cli;

/// <summary>
/// The relay as a real process whose memory is limited (<c>DOTNET_GCHeapHardLimit</c>, as a container's limit would):
/// its HTTP/2 tunnels' receive window is fitted to half of it, and that is the window its SETTINGS announce.
/// </summary>
public sealed class RelayMemoryTests
{
    [Fact]
    public async Task With_1_GiB_a_relay_announces_128_KiB_windows_for_its_4096_tunnels()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path),
            new Dictionary<string, string?> { ["DOTNET_GCHeapHardLimit"] = "0x40000000" });
        var port = await ConnectHarness.PlainPortAsync(relay);
        Assert.Contains("a receive window of 131072 bytes instead of relay.streamWindow 4194304", relay.StandardError);

        using var h2 = await RawHttp2.ConnectAsync(port);
        var settings = await h2.ReadUntilAsync(f => f.Type == RawHttp2.Settings && (f.Flags & RawHttp2.Ack) == 0);
        Assert.Equal(131_072u, Setting(settings!, RawHttp2.InitialWindowSize));
    }

    [Fact]
    public async Task With_enough_memory_the_configured_window_is_announced()
    {
        using var directory = new TemporaryDirectory();
        // 8 tunnels × 4 MiB fit in half of 1 GiB.
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--max-tunnels", "8"),
            new Dictionary<string, string?> { ["DOTNET_GCHeapHardLimit"] = "0x40000000" });
        var port = await ConnectHarness.PlainPortAsync(relay);
        Assert.DoesNotContain("relay.streamWindow", relay.StandardError);

        using var h2 = await RawHttp2.ConnectAsync(port);
        var settings = await h2.ReadUntilAsync(f => f.Type == RawHttp2.Settings && (f.Flags & RawHttp2.Ack) == 0);
        Assert.Equal(4u * 1024 * 1024, Setting(settings!, RawHttp2.InitialWindowSize));
    }

    /// <summary>A parameter's value in a SETTINGS frame (RFC 9113 §6.5.1: 16-bit id, 32-bit value), or null.</summary>
    private static uint? Setting(RawFrame frame, ushort id)
    {
        for (var at = 0; at + 6 <= frame.Payload.Length; at += 6)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(frame.Payload.AsSpan(at)) == id)
            {
                return BinaryPrimitives.ReadUInt32BigEndian(frame.Payload.AsSpan(at + 2));
            }
        }
        return null;
    }
}
