using System.Net;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>A tunnel end under a limit on open files: connections beyond its share are closed, the process stays up.</summary>
public sealed class TunnelOpenFilesTests
{
    /// <summary>
    /// Under 1024 the server end takes (1024 − 256 − 64) / 2 = 352 connections (the other half is for backend
    /// connections). Anyone who can reach the port could otherwise hold connections, before any handshake, until
    /// the process ran out of descriptors and aborted.
    /// </summary>
    [Fact]
    public async Task The_server_end_closes_connections_beyond_its_share_and_the_tunnel_keeps_working()
    {
        await using var pair = await TunnelPair.StartAsync();
        await pair.RestartServerAsync(pair.ServerConfig(""), openFiles: (1024, 1024));

        var strangers = new List<Socket>();
        try
        {
            for (var i = 0; i < 400; i++)
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                strangers.Add(socket);
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, pair.TunnelPort)).WaitAsync(Timeouts.Default);
            }
            var closed = await Task.WhenAll(strangers.Select(s => Loopback.IsClosedByPeerAsync(s, TimeSpan.FromSeconds(2))));
            // The session's own connection holds one of the 352.
            Assert.Equal(400 - 351, closed.Count(c => c));
            Assert.False(pair.Server.HasExited, pair.Server.Output);
        }
        finally
        {
            strangers.ForEach(s => s.Dispose());
        }

        using var client = pair.CreateHttpClient();
        Assert.Equal("GET /after", await client.GetStringAsync("/after").WaitAsync(Timeouts.Default));
    }
}
