//! Queries: one filter representation (`ast`) with two front ends (`pocketbase`, `mongo`),
//! its evaluator (`eval`), and the query (filter, sort, pagination, projection) run against a
//! collection: planned (`plan`, over `interval`s of index keys) and run (`exec`).
//!
//! Thread safety: plain owned data.

mod aggregate;
pub mod ast;
mod budget;
mod count;
pub mod eval;
mod exec;
pub(crate) mod interval;
mod lexer;
mod like;
pub mod mongo;
mod plan;
pub mod pocketbase;
mod request;

pub use aggregate::{Accumulator, Aggregation, Group, AGGREGATE_GROUPS_MAX};
pub use ast::{
    CompareOp, FieldPath, Filter, Operand, Params, Pattern, Quantifier, SortKey, Transform,
};
pub use budget::{ReadBudget, DEADLINE_CHECK_ENTRIES};
pub use mongo::parse_mongo;
pub use plan::{Alternative, Plan, PLAN_PROBE_ENTRIES_MAX, PLAN_PROBE_STEPS_MAX, PLAN_RANGES_MAX};
pub use pocketbase::{parse_filter, parse_sort, FilterContext};
pub use request::{
    Cursor, Page, Projection, Query, CURSOR_TEXT_BYTES_MAX, PROJECTION_PATHS_MAX,
    SORT_MEMORY_BYTES_MAX_DEFAULT,
};

use crate::{Collection, Document, Result};

impl Collection {
    /// The documents matching `query`'s filter, in its order, cut to its page, projected.
    pub fn find(&self, query: &Query) -> Result<Page> {
        self.state().check_live()?;
        exec::find(self.database().storage(), self.state(), query)
    }

    /// The first document matching `filter` (in id order), if any.
    pub fn find_one(&self, filter: Filter) -> Result<Option<Document>> {
        let mut page = self.find(&Query::new(filter).limit(1))?;
        Ok(page.documents.pop())
    }

    /// How many documents match `filter`. When an index answers the filter exactly (equalities
    /// and `in` lists on its leading fields, and no document with several entries in it), its
    /// entries are counted and no document is read.
    pub fn count(&self, filter: &Filter) -> Result<u64> {
        self.count_within(filter, ReadBudget::UNLIMITED)
    }

    /// `count`, stopping with `Error::BudgetExceeded` once `budget` is spent.
    pub fn count_within(&self, filter: &Filter, budget: ReadBudget) -> Result<u64> {
        self.state().check_live()?;
        count::count(self.database().storage(), self.state(), filter, budget)
    }

    /// How `find` would read `query`'s documents, and what else it considered.
    pub fn explain(&self, query: &Query) -> Result<Plan> {
        self.state().check_live()?;
        exec::explain(self.database().storage(), self.state(), query)
    }
}

impl Collection {
    /// Groups the documents matching the aggregation's filter by its `group_by` paths and
    /// computes its accumulators per group; groups come sorted by key.
    pub fn aggregate(&self, aggregation: &Aggregation) -> Result<Vec<Group>> {
        self.state().check_live()?;
        let mut groups = aggregate::Groups::new(aggregation);
        exec::for_each_match(
            self.database().storage(),
            self.state(),
            &aggregation.filter,
            ReadBudget::UNLIMITED,
            &mut |document| groups.add(document),
        )?;
        Ok(groups.finish())
    }
}
