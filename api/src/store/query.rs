//! Building filtered queries with `$N` placeholders, numbered in order of appearance (the
//! form both PostgreSQL and SQLite accept through `sqlx::Any`). Values are always bound,
//! never spliced into the SQL.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments};

pub enum Value {
    Text(String),
    Int(i64),
}

#[derive(Default)]
pub struct Filter {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    /// Adds `column op $N`.
    pub fn push(&mut self, column: &str, op: &str, value: Value) {
        self.values.push(value);
        self.clauses.push(format!("{column} {op} ${}", self.values.len()));
    }

    /// Adds `column IN ($N, …)`.
    pub fn push_in(&mut self, column: &str, values: Vec<Value>) {
        self.push_list(&format!("{column} IN ({{list}})"), values);
    }

    /// Adds `template` with `{list}` replaced by one placeholder per value (`$N, …`).
    pub fn push_list(&mut self, template: &str, values: Vec<Value>) {
        let mut marks = Vec::with_capacity(values.len());
        for v in values {
            self.values.push(v);
            marks.push(format!("${}", self.values.len()));
        }
        self.clauses.push(template.replace("{list}", &marks.join(", ")));
    }

    /// Limits `column` to a caller's sites (`None`: every site, no clause; an empty scope
    /// matches nothing).
    pub fn push_sites(&mut self, column: &str, sites: Option<&[String]>) {
        match sites {
            None => {}
            Some([]) => self.clauses.push("1 = 0".into()),
            Some(sites) => self.push_in(column, sites.iter().cloned().map(Value::Text).collect()),
        }
    }

    /// Limits to rows whose `column` is the id of an incident of the caller's sites.
    pub fn push_incident_of_sites(&mut self, column: &str, sites: Option<&[String]>) {
        match sites {
            None => {}
            Some([]) => self.clauses.push("1 = 0".into()),
            Some(sites) => self.push_list(
                &format!("{column} IN (SELECT incident_id FROM incidents WHERE site_id IN ({{list}}))"),
                sites.iter().cloned().map(Value::Text).collect(),
            ),
        }
    }

    /// Adds a clause with two placeholders: `template` holds `{a}` and `{b}`.
    pub fn push_pair(&mut self, template: &str, a: Value, b: Value) {
        self.values.push(a);
        let na = self.values.len();
        self.values.push(b);
        let nb = self.values.len();
        self.clauses.push(template.replace("{a}", &format!("${na}")).replace("{b}", &format!("${nb}")));
    }

    /// A placeholder for one more bound value (e.g. LIMIT).
    pub fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    pub fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub fn arguments(self) -> Result<AnyArguments, sqlx::Error> {
        let mut args = AnyArguments::default();
        for v in self.values {
            match v {
                Value::Text(s) => args.add(s).map_err(sqlx::Error::Encode)?,
                Value::Int(i) => args.add(i).map_err(sqlx::Error::Encode)?,
            }
        }
        Ok(args)
    }
}

/// Runs a dynamically built query.
pub fn build(sql: String, filter: Filter) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, sqlx::Error> {
    Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), filter.arguments()?))
}
