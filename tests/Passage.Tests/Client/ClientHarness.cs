using System.Net;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary>A CONNECT relay as a real <c>passage</c> process, for client tests: its address and node ID.</summary>
internal sealed class RelayProcess : IAsyncDisposable
{
    private readonly TemporaryDirectory _directory;

    private RelayProcess(PassageProcess process, TemporaryDirectory directory, int port, NodeId id)
    {
        Process = process;
        _directory = directory;
        Port = port;
        NodeId = id;
    }

    public PassageProcess Process { get; }

    public int Port { get; }

    public NodeId NodeId { get; }

    public PeerAddress Address => new(NodeId, "127.0.0.1", Port);

    /// <summary>Starts a relay that maps origin.test to <paramref name="originAddress"/> and allows private destinations.</summary>
    public static async Task<RelayProcess> StartAsync(string originAddress = "127.0.0.1", params string[] extra)
    {
        var directory = new TemporaryDirectory();
        var process = PassageProcess.Start([
            "relay", "--connect", "127.0.0.1:0", "--key", Path.Combine(directory.Path, "relay.pem"),
            "--allow", "*:*", "--allow-private", "--map", $"origin.test={originAddress}", .. extra,
        ]);
        var port = await process.WaitForListeningPortAsync();
        var line = await process.WaitForLineAsync(l => l.StartsWith("node ID ", StringComparison.Ordinal));
        return new RelayProcess(process, directory, port, NodeId.Parse(line["node ID ".Length..].Trim()));
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        _directory.Dispose();
    }
}
