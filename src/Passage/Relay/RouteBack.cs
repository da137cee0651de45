using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Relay;

/// <summary>
/// Tells a route back to the relay itself (a pass-through relay with <c>*=:443</c> and a client naming the relay), which
/// would forward the same first bytes to the relay again and again, one client connection taking every slot.
/// </summary>
/// <remarks>
/// <para>A dialed upstream is surely the relay's own listener when it is that listener's address and port, or loopback on
/// the port of a listener bound to every address: <see cref="OfDial"/> says <see cref="Dial.Own"/>, and the dial is
/// refused before a byte goes to it.</para>
/// <para>At another of this host's addresses on that port (the socket is sent from the address it reached, as a local
/// destination is its own source), it may be the listener or something else of this host's kernel that answers there:
/// a service address that IPVS holds on the host (kube-proxy's IPVS mode) is local too. Such a dial is only noted
/// (<see cref="Dial.Noted"/>): its socket's own endpoint is kept for <see cref="Keep"/>, and when the listener accepts a
/// connection from that very endpoint and reads its first bytes, <see cref="CameFromOwnDial"/> says so, and that hop is
/// refused. The loop ends there, and an upstream that only looked like the relay is reached as it should be.</para>
/// </remarks>
internal sealed class RouteBack(Func<IReadOnlyList<IPEndPoint>> listeners, TimeProvider time, TimeSpan keep)
{
    // The noted dials' own endpoints, each with when it stops counting (a timestamp of the clock).
    private readonly ConcurrentDictionary<(SocketReadiness.Address16 Address, int Port), long> _noted = new();
    private readonly long _keepTicks = (long)(keep.TotalSeconds * time.TimestampFrequency);
    private long _nextSweep;
    // How many notes are kept: ConcurrentDictionary's IsEmpty takes every lock when it is empty, the usual case, and this
    // is asked for every connection accepted.
    private int _count;

    /// <summary>What a dial that reached an upstream is, to the relay.</summary>
    public enum Dial
    {
        /// <summary>Not one of the relay's listeners.</summary>
        Elsewhere,

        /// <summary>Surely one of the relay's listeners: refuse it.</summary>
        Own,

        /// <summary>Maybe one of them: noted, known for sure when (if) the listener accepts it.</summary>
        Noted,
    }

    /// <summary>How long a noted dial counts: the hop back in has read its first bytes by then, or been closed.</summary>
    public TimeSpan Keep => keep;

    /// <summary>Whether any dial is noted now (a cheap check before <see cref="CameFromOwnDial"/>).</summary>
    public bool AnyNoted => Volatile.Read(ref _count) > 0;

    /// <summary>What <paramref name="dialed"/>, connected to <paramref name="reached"/>, is to the relay (see the remarks).</summary>
    public Dial OfDial(SocketConnection dialed, IPEndPoint reached)
    {
        IReadOnlyList<IPEndPoint> bound = listeners();
        // By index: a foreach over the interface would allocate an enumerator for every connection.
        for (int i = 0; i < bound.Count; i++)
        {
            IPEndPoint listening = bound[i];
            if (listening.Port != reached.Port)
            {
                continue;
            }
            IPAddress address = Unmapped(reached.Address);
            IPAddress on = Unmapped(listening.Address);
            if (on.Equals(address))
            {
                return Dial.Own;
            }
            bool everyAddress = on.Equals(IPAddress.IPv6Any) || (on.Equals(IPAddress.Any) && address.AddressFamily == AddressFamily.InterNetwork);
            if (!everyAddress)
            {
                continue;
            }
            if (IPAddress.IsLoopback(address))
            {
                return Dial.Own;
            }
            // The socket's own endpoint from the kernel, not LocalEndPoint, which each relayed connection would keep: sent
            // from the address it reached, the socket went to this host; that endpoint is the note.
            if (SocketReadiness.TryGetEndpoint(dialed.Socket, peer: false, out var local, out var localPort)
                && SocketReadiness.ToAddress16(address, out var reachedAddress)
                && local.Equals(reachedAddress))
            {
                Note(local, localPort);
                return Dial.Noted;
            }
        }
        return Dial.Elsewhere;
    }

    /// <summary>
    /// Whether <paramref name="accepted"/> comes from a dial this relay noted (see the remarks): then it is the relay
    /// talking to itself. The note is used up.
    /// </summary>
    public bool CameFromOwnDial(Socket accepted) =>
        AnyNoted
        && SocketReadiness.TryGetEndpoint(accepted, peer: true, out var address, out var port)
        && Removed(_noted.TryRemove((address, port), out long until))
        && time.GetTimestamp() < until;

    private bool Removed(bool removed)
    {
        if (removed)
        {
            Interlocked.Decrement(ref _count);
        }
        return removed;
    }

    private void Note(SocketReadiness.Address16 address, int port)
    {
        long now = time.GetTimestamp();
        // The same endpoint again (a port used anew) takes the later dial's time; each note added is counted once.
        while (!_noted.TryAdd((address, port), now + _keepTicks))
        {
            if (_noted.TryGetValue((address, port), out long earlier) && _noted.TryUpdate((address, port), now + _keepTicks, earlier))
            {
                return;
            }
        }
        Interlocked.Increment(ref _count);
        // Notes the hop back in never used (an upstream that only looked like the relay) go at most once a Keep.
        long sweep = Volatile.Read(ref _nextSweep);
        if (now >= sweep && Interlocked.CompareExchange(ref _nextSweep, now + _keepTicks, sweep) == sweep)
        {
            foreach (var note in _noted)
            {
                if (note.Value <= now)
                {
                    Removed(_noted.TryRemove(note));
                }
            }
        }
    }

    private static IPAddress Unmapped(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
