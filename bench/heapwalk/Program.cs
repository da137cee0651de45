using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Runtime;

// heapwalk PID OUT.tsv: a heap dump of PID (createdump, via the diagnostics port), then every object
// reachable from the GC roots, grouped by type: "type<TAB>count<TAB>bytes", largest first. The first
// lines are "#total<TAB>objects<TAB>bytes" of the live heap and "#committed<TAB>segments<TAB>bytes".
// Byte arrays are grouped by length and by the type of the object that first led to them.
// heapwalk diff A.tsv B.tsv N: per type, (B - A) / N bytes and objects: what each of N more
// connections keeps, when A and B were taken with N connections between them (load tool idle --at-step).
// Lines starting with "~" are dead objects (unreachable, not yet collected) by type: after a burst of work
// with no collection in between, what that work allocated and dropped (HEAPWALK_STRINGS=1 adds the dead
// strings by text). HEAPWALK_WHY=TYPE prints, for a few live objects of TYPE, the chain of objects that holds
// them (the first path the walk found from a root).
if (args[0] == "diff")
{
    return Diff(args[1], args[2], double.Parse(args[3], CultureInfo.InvariantCulture));
}
var pid = int.Parse(args[0], CultureInfo.InvariantCulture);
var output = args[1];
var dump = Path.Combine(Path.GetTempPath(), $"heapwalk-{pid}-{Environment.TickCount64}.dmp");
try
{
    new DiagnosticsClient(pid).WriteDump(DumpType.WithHeap, dump);
    using var target = DataTarget.LoadDump(dump);
    using var runtime = target.ClrVersions[0].CreateRuntime();
    var heap = runtime.Heap;
    var seen = new HashSet<ulong>();
    var stack = new Stack<ulong>();
    foreach (var root in heap.EnumerateRoots())
    {
        if (root.Object.Address != 0 && seen.Add(root.Object.Address))
        {
            stack.Push(root.Object.Address);
        }
    }
    var byType = new Dictionary<string, (long Count, long Bytes)>();
    // For arrays of bytes: which type of object first led to each (by length), to see who holds them.
    var parentOf = new Dictionary<ulong, string>();
    // HEAPWALK_WHY=TYPE: the chain of referrers (as first found) from a root to a few objects of TYPE.
    var why = Environment.GetEnvironmentVariable("HEAPWALK_WHY");
    var referrer = new Dictionary<ulong, ulong>();
    long objects = 0, bytes = 0;
    while (stack.Count > 0)
    {
        var obj = heap.GetObject(stack.Pop());
        if (!obj.IsValid)
        {
            continue;
        }
        var name = obj.Type?.Name ?? "?";
        if (name == "System.Byte[]")
        {
            name = $"System.Byte[{obj.AsArray().Length}] via {parentOf.GetValueOrDefault(obj.Address, "root")}";
        }
        var size = (long)obj.Size;
        byType[name] = byType.TryGetValue(name, out var c) ? (c.Count + 1, c.Bytes + size) : (1, size);
        objects++;
        bytes += size;
        foreach (var reference in obj.EnumerateReferenceAddresses(carefully: true, considerDependantHandles: true))
        {
            if (reference != 0 && seen.Add(reference))
            {
                if (why is not null)
                {
                    referrer[reference] = obj.Address;
                }
                if (heap.GetObjectType(reference)?.Name == "System.Byte[]")
                {
                    parentOf[reference] = obj.Type?.Name ?? "?";
                }
                stack.Push(reference);
            }
        }
    }
    if (why is not null)
    {
        foreach (var address in seen.Where(a => heap.GetObjectType(a)?.Name == why).Take(3))
        {
            var chain = new List<string>();
            for (var at = address; chain.Count < 40; at = referrer[at])
            {
                chain.Add(heap.GetObjectType(at)?.Name ?? "?");
                if (!referrer.ContainsKey(at))
                {
                    break;
                }
            }
            Console.WriteLine($"{why} held by: {string.Join(" <- ", chain.Skip(1))}");
        }
    }
    using var writer = new StreamWriter(output);
    writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#total\t{objects}\t{bytes}"));
    var committed = heap.Segments.Sum(s => (long)s.CommittedMemory.Length);
    writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#committed\t{heap.Segments.Length}\t{committed}"));
    // Where the committed bytes that are not live go: per kind of segment, live objects, dead ones
    // (unreachable, not yet collected) and free space (gaps the GC left, e.g. between survivors).
    var bySegment = new Dictionary<string, (long Count, long Bytes)>();
    void Add(string key, long size) =>
        bySegment[key] = bySegment.TryGetValue(key, out var c) ? (c.Count + 1, c.Bytes + size) : (1, size);
    foreach (var segment in heap.Segments)
    {
        var kind = segment.Kind.ToString();
        Add($"#segment-committed {kind}", (long)segment.CommittedMemory.Length);
        foreach (var obj in segment.EnumerateObjects())
        {
            if (!obj.IsValid)
            {
                // Unreadable (a gap the runtime had not yet formatted, with a large gen0 budget): counted, skipped.
                Add($"#unreadable {kind}", 0);
                continue;
            }
            var state = obj.IsFree ? "free" : seen.Contains(obj.Address) ? "live" : "dead";
            Add($"#{state} {kind}", (long)obj.Size);
            if (state == "dead")
            {
                // Garbage not yet collected, by type: what recent work allocated and dropped.
                var deadName = obj.Type?.Name ?? "?";
                Add(deadName == "System.Byte[]" ? $"~System.Byte[{obj.AsArray().Length}]" : $"~{deadName}", (long)obj.Size);
                if (deadName == "System.String" && Environment.GetEnvironmentVariable("HEAPWALK_STRINGS") == "1")
                {
                    // Which strings: their text, shortened, tabs and line ends escaped.
                    var text = obj.AsString(80) ?? "";
                    Add($"~\"{text.Replace("\t", "\\t", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"", (long)obj.Size);
                }
            }
        }
    }
    foreach (var (key, (count, size)) in bySegment.OrderBy(p => p.Key, StringComparer.Ordinal))
    {
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{key}\t{count}\t{size}"));
    }
    foreach (var (name, (count, size)) in byType.OrderByDescending(p => p.Value.Bytes))
    {
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}\t{count}\t{size}"));
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"live_objects {objects} live_bytes {bytes}"));
    return 0;
}
finally
{
    File.Delete(dump);
}

static int Diff(string before, string after, double n)
{
    static Dictionary<string, (long Count, long Bytes)> Load(string path) =>
        File.ReadLines(path).Select(l => l.Split('\t')).ToDictionary(
            f => f[0], f => (long.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture)));
    var a = Load(before);
    var b = Load(after);
    var rows = a.Keys.Union(b.Keys).Select(t =>
    {
        var (ca, ba) = a.GetValueOrDefault(t);
        var (cb, bb) = b.GetValueOrDefault(t);
        return (Type: t, Bytes: (bb - ba) / n, Count: (cb - ca) / n);
    }).Where(r => Math.Abs(r.Bytes) >= 1).OrderByDescending(r => r.Type.StartsWith('#')).ThenByDescending(r => r.Bytes);
    foreach (var (type, bytes, count) in rows)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{bytes,8:F0} B {count,6:F2} objects  {type}"));
    }
    return 0;
}
