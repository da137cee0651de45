namespace Passage.Transport;

/// <summary>Why a pump direction on the zero-copy path copied through user space instead.</summary>
internal enum SpliceFallback
{
    /// <summary>
    /// No pipe to be had: the pipes already open fill this process's share of the open-file limit, the
    /// process or system is out of descriptors, or the kernel would give only a pipe smaller than its default (the
    /// user is past fs.pipe-user-pages-soft). That burst is copied; the next one asks for a pipe again.
    /// </summary>
    NoPipe,

    /// <summary>The kernel refused to splice these sockets (EINVAL, or ENOSYS for every socket): the direction copies from then on.</summary>
    Refused,

    /// <summary>The source socket is in blocking mode, where a splice would park a thread: the direction copies from then on.</summary>
    BlockingSocket,
}

/// <summary>
/// How often each <see cref="SpliceFallback"/> happened since the process started, counted as it happens (not
/// when the connection ends), so that an operator sees a relay running out of pipes while it does. Process-wide,
/// like the pipes themselves (<see cref="SplicePipe"/>).
/// </summary>
internal static class SpliceFallbacks
{
    private static readonly long[] s_counts = new long[3];

    /// <summary>Every reason, in the order of the enum.</summary>
    public static IReadOnlyList<SpliceFallback> All { get; } = [SpliceFallback.NoPipe, SpliceFallback.Refused, SpliceFallback.BlockingSocket];

    /// <summary>
    /// Raised each time a direction finds no pipe, with the errno <see cref="SplicePipe.Rent"/> gave (EMFILE, ENFILE,
    /// ENOBUFS): a relay says so once in its log, where the count alone would go unnoticed. Raised for every burst
    /// copied for want of a pipe, so a handler must be cheap.
    /// </summary>
    public static event Action<int>? PipeRefused;

    /// <summary>Counts one fallback.</summary>
    public static void Count(SpliceFallback reason) => Interlocked.Increment(ref s_counts[(int)reason]);

    /// <summary>Counts one burst copied for want of a pipe, and tells <see cref="PipeRefused"/> why there was none.</summary>
    public static void CountNoPipe(int errno)
    {
        Count(SpliceFallback.NoPipe);
        PipeRefused?.Invoke(errno);
    }

    /// <summary>Fallbacks for <paramref name="reason"/> so far.</summary>
    public static long Of(SpliceFallback reason) => Interlocked.Read(ref s_counts[(int)reason]);

    /// <summary>The tag value the relay's counters use for <paramref name="reason"/>.</summary>
    public static string Name(SpliceFallback reason) => reason switch
    {
        SpliceFallback.NoPipe => "no_pipe",
        SpliceFallback.Refused => "refused",
        _ => "blocking_socket",
    };
}
