using System.Net;
using System.Net.Sockets;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A listener whose accept queue is full and never drained: the kernel drops further SYNs, so a connect to it
/// waits (retransmitting) until its caller gives up, as to a host that drops packets.
/// </summary>
internal sealed class Blackhole : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Socket _filler = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public Blackhole(IPAddress? address = null, int port = 0)
    {
        _listener.Bind(new IPEndPoint(address ?? IPAddress.Loopback, port));
        _listener.Listen(0);
        _filler.Connect(_listener.LocalEndPoint!);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    public void Dispose()
    {
        _filler.Dispose();
        _listener.Dispose();
    }
}
