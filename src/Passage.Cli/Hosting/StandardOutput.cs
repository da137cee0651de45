namespace Passage.Cli.Hosting;

/// <summary>
/// Writing a command's result to standard output, which may be closed (<c>passage id KEY &gt;&amp;-</c>), a pipe whose reader
/// is gone (.NET ignores SIGPIPE, so the write fails with EPIPE) or a full disk: the failure is a value to report in words,
/// not an exception whose stack trace ends the command.
/// </summary>
internal static class StandardOutput
{
    /// <summary>Writes <paramref name="text"/> and a line break to <paramref name="output"/>; null when written, else why not.</summary>
    public static string? TryWriteLine(TextWriter output, string text)
    {
        try
        {
            output.WriteLine(text);
            output.Flush();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Cause(e);
        }
    }

    /// <summary>
    /// The system's words for a failed write: a closed descriptor (EBADF) comes from .NET as an
    /// <see cref="UnauthorizedAccessException"/>, "Access to the path is denied", around an <see cref="IOException"/> that
    /// says "Bad file descriptor"; the access meant is no file's.
    /// </summary>
    private static string Cause(Exception e) => e is UnauthorizedAccessException { InnerException: IOException inner } ? inner.Message : e.Message;
}
