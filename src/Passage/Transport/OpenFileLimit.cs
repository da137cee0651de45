using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Passage.Transport;

/// <summary>
/// The process's limit on open file descriptors (RLIMIT_NOFILE), which bounds its sockets and pipes. Linux only.
/// </summary>
/// <remarks>
/// The .NET runtime raises the soft limit to the hard one as it starts (a process started under soft 1024, hard 3000
/// runs with 3000), so this is the hard limit the process was given. A relay holds two descriptors per relayed
/// connection, and the runtime itself about two per loaded assembly (some 190 for an idle relay). Out of descriptors,
/// the runtime can fail to load an assembly or start a thread and the process aborts ("Out of memory."), measured
/// with 430 tunnels under <c>ulimit -n 1024</c>; so the relay sizes its caps to the limit
/// (<see cref="Relay.DescriptorBudget"/>).
/// </remarks>
internal static partial class OpenFileLimit
{
    private const int RLIMIT_NOFILE = 7;

    /// <summary>The soft limit now, or null where it is not read (not Linux, or getrlimit failed).</summary>
    public static long? Current => OperatingSystem.IsLinux() && GetRLimit(RLIMIT_NOFILE, out var limit) == 0 ? Clamp(limit.Current) : null;

    /// <summary>
    /// Descriptors never planned for traffic: the runtime's own (about 190 for an idle relay), logs, admin, and the
    /// <see cref="Headroom"/>.
    /// </summary>
    public const int ProcessReserve = 256;

    /// <summary>
    /// The highest descriptors the limit allows, which the relay never keeps for traffic (<see cref="InHeadroom"/>): they
    /// stay free for the runtime. Starting a thread takes a pipe for a moment (the runtime starts every thread suspended
    /// and wakes it through one); with none to be had the start fails with OutOfMemoryException, and when the thread pool
    /// was adding a worker nothing catches it: the process printed "Out of memory." and aborted.
    /// </summary>
    public const int Headroom = 32;

    /// <summary>
    /// Whether <paramref name="descriptor"/>, just opened, is one of the <see cref="Headroom"/> highest the current
    /// limit allows (false where the limit is not read). The kernel gives the lowest free number, so one this high
    /// means fewer than <see cref="Headroom"/> are left: the caller closes it and treats the call as out of
    /// descriptors (EMFILE). The limit is read each time: it can be lowered under a running process (prlimit).
    /// </summary>
    public static bool InHeadroom(long descriptor) => Current is { } limit && descriptor >= limit - Headroom;

    /// <summary>
    /// Whether the next <paramref name="count"/> descriptors the process opens would reach the <see cref="Headroom"/> (or
    /// none is left): for code that opens descriptors it cannot check itself (getaddrinfo's sockets and files). Opens
    /// /dev/null that many times for a moment to see: the kernel gives the lowest free number, so the last one tells where
    /// the <paramref name="count"/>th free descriptor is. False where the limit is not read, or /dev/null cannot be
    /// opened for another reason than a lack of descriptors.
    /// </summary>
    public static bool NextInHeadroom(int count = 1)
    {
        if (Current is null)
        {
            return false;
        }
        var probes = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                probes.Add(File.OpenHandle("/dev/null"));
                if (InHeadroom(probes[^1].DangerousGetHandle()))
                {
                    return true;
                }
            }
            return false;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            // No /dev/null to look with (a bare chroot, a sandbox): it cannot tell, and lookups are not kept from running.
            return false;
        }
        catch (IOException)
        {
            // EMFILE, ENFILE: none left.
            return true;
        }
        finally
        {
            probes.ForEach(p => p.Dispose());
        }
    }

    /// <summary>
    /// Descriptors left for traffic under <paramref name="limit"/>: less the splice pipes' share and
    /// <see cref="ProcessReserve"/>. Can be zero or less when the limit is very low.
    /// </summary>
    public static long ForTraffic(long limit) => limit - ProcessReserve - PipeShare(limit);

    /// <summary>
    /// How many slots of <paramref name="descriptorsEach"/> descriptors fit in what <paramref name="limit"/> leaves for
    /// traffic; at least 1.
    /// </summary>
    public static int ConnectionsThatFit(long limit, long descriptorsEach) => (int)Math.Clamp(ForTraffic(limit) / descriptorsEach, 1, int.MaxValue);

    /// <summary>
    /// <see cref="ConnectionsThatFit(long, long)"/> under the current limit, or null where the limit is not read. For
    /// listeners whose connections have no other cap.
    /// </summary>
    public static int? ConnectionsThatFit(int descriptorsEach) => Current is { } limit ? ConnectionsThatFit(limit, descriptorsEach) : null;

    /// <summary>
    /// Descriptors set aside for splice pipes out of <paramref name="limit"/>: a sixteenth (625 pipes under 20000, as many
    /// directions splicing at once; 32 under 1024). Beyond it a direction copies
    /// instead of splicing (<see cref="SplicePipe.Rent"/>); the relay's caps leave it free (<see cref="Relay.DescriptorBudget"/>).
    /// </summary>
    public static long PipeShare(long limit) => limit / 16;

    /// <summary>
    /// Spare descriptors (/dev/null, opened when a front door starts) for the moment the process runs out: closing them
    /// gives the runtime room to start the thread or load the code that handling the shortage needs, instead of aborting.
    /// </summary>
    private const int SpareCount = 16;
    private static readonly object s_spareGate = new();
    private static List<Microsoft.Win32.SafeHandles.SafeFileHandle>? s_spares;

    /// <summary>Opens the spare descriptors if they are not held (again, after <see cref="ReleaseSpares"/>); false when it could not.</summary>
    public static bool HoldSpares()
    {
        lock (s_spareGate)
        {
            if (s_spares is not null || !OperatingSystem.IsLinux())
            {
                return true;
            }
            var spares = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>(SpareCount);
            var held = true;
            try
            {
                for (var i = 0; i < SpareCount && held; i++)
                {
                    spares.Add(File.OpenHandle("/dev/null"));
                    // Spares must not take the headroom they are meant to add to.
                    held = !InHeadroom(spares[^1].DangerousGetHandle());
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                held = false;
            }
            if (!held)
            {
                // Still short: give back what was had and try again later.
                spares.ForEach(s => s.Dispose());
                return false;
            }
            s_spares = spares;
            return true;
        }
    }

    /// <summary>Closes the spare descriptors, if held (out of descriptors: someone needs them now).</summary>
    public static void ReleaseSpares()
    {
        lock (s_spareGate)
        {
            s_spares?.ForEach(s => s.Dispose());
            s_spares = null;
        }
    }

    // RLIM_INFINITY is all ones: no limit worth counting against.
    private static long Clamp(ulong value) => value > long.MaxValue ? long.MaxValue : (long)value;

    [StructLayout(LayoutKind.Sequential)]
    private record struct RLimit(ulong Current, ulong Maximum);

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);
}

/// <summary>
/// The descriptor side of an accept loop (a front door's, the admin listener's): what it does when accept fails for
/// want of descriptors, and which accepted connections it does not keep. One per loop; not thread-safe.
/// </summary>
/// <remarks>
/// Out of descriptors (EMFILE, ENFILE) or kernel memory, every accept fails at once until some are freed, so a loop
/// that tries again at once spins: Kestrel's own accept loop did, at about half a core with one client waiting. So the
/// loop pauses
/// (<see cref="Pause"/>) and the connections wait in the listen backlog; the first such failure releases the spare
/// descriptors (<see cref="OpenFileLimit.ReleaseSpares"/>) for the runtime, and after it a connection is kept only once
/// they are held again. A connection accepted on one of the <see cref="OpenFileLimit.Headroom"/> is not kept either.
/// The loop pauses after each refusal too.
/// </remarks>
internal sealed class AcceptGuard
{
    /// <summary>How long the loop pauses at most after an accept failed for want of descriptors, or after a refusal.</summary>
    public static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(100);

    private bool _short;
    private bool _inHeadroom;

    /// <summary>Whether <paramref name="error"/>, from accept, means no descriptor (or no memory) is to be had now.</summary>
    public static bool IsShortage(SocketException error) =>
        error.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable;

    /// <summary>
    /// Accept failed for want of descriptors (<see cref="IsShortage"/>): the caller pauses. The first time since a
    /// connection was kept, releases the spare descriptors and returns true (the caller says so).
    /// </summary>
    public bool Failed()
    {
        if (_short)
        {
            return false;
        }
        _short = true;
        // The runtime needs a descriptor or two to go on (a thread for the pause's timer, code to load): without the
        // spares it could abort here.
        OpenFileLimit.ReleaseSpares();
        return true;
    }

    /// <summary>
    /// Whether <paramref name="client"/>, just accepted, may be kept: not when it took one of the
    /// <see cref="OpenFileLimit.Headroom"/> (<paramref name="firstInHeadroom"/>: the first such since one was kept, for
    /// the caller to say), nor after a <see cref="Failed"/> while the spares cannot be held again. One refused, the caller
    /// closes it and pauses.
    /// </summary>
    public bool MayKeep(Socket client, out bool firstInHeadroom)
    {
        firstInHeadroom = false;
        if (OpenFileLimit.InHeadroom(client.Handle))
        {
            firstInHeadroom = !_inHeadroom;
            _inHeadroom = true;
            return false;
        }
        _inHeadroom = false;
        if (_short)
        {
            // Still at the edge: this connection would take the descriptors the runtime may need.
            if (!OpenFileLimit.HoldSpares())
            {
                return false;
            }
            _short = false;
        }
        return true;
    }
}
