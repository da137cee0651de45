using System.Net;
using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>The outcome of <see cref="TcpDialer.ConnectAsync"/>: a connected socket, or why there is none.</summary>
/// <param name="Connection">The connected socket, ready to relay (owned by the caller), or null.</param>
/// <param name="Error">Why there is no socket, or <see cref="DialError.None"/>.</param>
/// <param name="SocketError">The last socket error seen.</param>
/// <param name="Reached">The address connected to (the socket itself is not asked: see <see cref="SocketConnection.ConnectAsync"/>).</param>
public readonly record struct DialResult(SocketConnection? Connection, DialError Error, SocketError SocketError, IPEndPoint? Reached = null);
