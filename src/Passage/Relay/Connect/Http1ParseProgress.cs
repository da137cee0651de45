namespace Passage.Relay.Connect;

/// <summary>
/// How far <see cref="Http1ConnectParser"/> got in a head that is still arriving: the complete lines already judged
/// and what they said, and how much of the last, incomplete line it has looked at. Given back to the next call, it
/// lets that call look only at the bytes that came since, so that a head trickled in one byte per read costs work
/// in proportion to its length, not to its square. Starts as <c>default</c>; owned by one connection.
/// </summary>
internal struct Http1ParseProgress
{
    /// <summary>Where the first line not yet complete starts.</summary>
    internal int LineStart;

    /// <summary>How many bytes of that line have been looked at: none of them is its LF.</summary>
    internal int Looked;

    /// <summary>Within that line: where its method ends (request line) or its colon is (field line), once seen; else -1 (as <see cref="MarkSeen"/> says).</summary>
    internal int Mark;

    /// <summary>Whether <see cref="Mark"/> has been seen.</summary>
    internal bool MarkSeen;

    /// <summary>Whether the request line has been read (and found a valid CONNECT).</summary>
    internal bool RequestLineRead;

    /// <summary>Where the request line starts.</summary>
    internal int RequestLineStart;

    /// <summary>The request target, within the request line.</summary>
    internal Range Target;

    /// <summary>The target's host, within the target.</summary>
    internal Range Host;

    /// <summary>The target's port.</summary>
    internal int Port;

    /// <summary>The request's HTTP version.</summary>
    internal Version? Version;

    /// <summary>The header field lines read so far.</summary>
    internal int HeaderCount;

    /// <summary>Where the Proxy-Authorization value lies in the head, once read.</summary>
    internal Range? ProxyAuthorization;

    /// <summary>Where the Host value lies in the head, once read.</summary>
    internal Range? HostHeader;

    /// <summary>Moves on to the line that starts at <paramref name="start"/>.</summary>
    internal void NextLine(int start)
    {
        LineStart = start;
        Looked = 0;
        MarkSeen = false;
        Mark = -1;
    }
}
