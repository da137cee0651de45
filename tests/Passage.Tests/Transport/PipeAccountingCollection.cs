namespace Passage.Tests.Transport;

/// <summary>
/// Tests that count process-wide descriptors, pipes and readiness reports: they run alone, since any other test's pump
/// would move the counts.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PipeAccountingCollection
{
    public const string Name = "Pipe accounting";
}
