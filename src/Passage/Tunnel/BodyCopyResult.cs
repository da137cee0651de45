namespace Passage.Tunnel;

/// <summary>How copying one body ended.</summary>
internal enum BodyCopyResult
{
    /// <summary>The source ended and everything was written.</summary>
    Completed,

    /// <summary>Reading the source failed (its sender went away or broke the framing).</summary>
    SourceFailed,

    /// <summary>Writing failed (the receiver went away).</summary>
    DestinationFailed,

    /// <summary>The receiver took no byte for the limit it was given (it stopped reading).</summary>
    ReceiverIdle,

    /// <summary>The caller's token ended the copy.</summary>
    Canceled,
}
