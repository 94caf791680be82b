//! Dense row-major tensors of the element types an ONNX graph like Basic
//! Pitch's carries: 32-bit floats (the signal), 64-bit integers (shapes,
//! indices; ONNX's int32 is widened to them) and booleans (masks).

/// A tensor's elements.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Data::F32(_) => "float32",
            Data::I64(_) => "int64",
            Data::Bool(_) => "bool",
        }
    }

    /// The elements at `offsets`, in order; `None` is `fill` (padding),
    /// which for integers and booleans is its zero.
    pub fn gather(&self, offsets: &[Option<usize>], fill: f32) -> Data {
        fn pick<T: Copy>(values: &[T], offsets: &[Option<usize>], fill: T) -> Vec<T> {
            offsets
                .iter()
                .map(|o| o.map_or(fill, |i| values[i]))
                .collect()
        }
        match self {
            Data::F32(v) => Data::F32(pick(v, offsets, fill)),
            Data::I64(v) => Data::I64(pick(v, offsets, 0)),
            Data::Bool(v) => Data::Bool(pick(v, offsets, false)),
        }
    }
}

/// A shape and its elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    /// A float tensor; `data.len()` must be the shape's element count.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            data: Data::F32(data),
        }
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            data: Data::I64(data),
        }
    }

    /// The float elements, or why there are none.
    pub fn floats(&self) -> Result<&[f32], String> {
        match &self.data {
            Data::F32(v) => Ok(v),
            other => Err(format!("expected float32, got {}", other.type_name())),
        }
    }

    /// The integer elements, or why there are none.
    pub fn ints(&self) -> Result<&[i64], String> {
        match &self.data {
            Data::I64(v) => Ok(v),
            other => Err(format!("expected int64, got {}", other.type_name())),
        }
    }
}

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    strides
}

/// For every element of `shape` in row-major order, `source(index)`: the
/// offset it is read from (or `None` for padding), where `index` is its
/// multi-index. The odometer keeps the index without a division per
/// element.
pub fn map_offsets(
    shape: &[usize],
    mut source: impl FnMut(&[usize]) -> Option<usize>,
) -> Vec<Option<usize>> {
    let count: usize = shape.iter().product();
    let mut offsets = Vec::with_capacity(count);
    if count == 0 {
        return offsets;
    }
    let mut index = vec![0usize; shape.len()];
    for _ in 0..count {
        offsets.push(source(&index));
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        assert_eq!(strides(&[2, 3, 4]), [12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
    }

    #[test]
    fn offsets_walk_the_shape_in_row_major_order() {
        let seen = map_offsets(&[2, 3], |i| Some(i[0] * 10 + i[1]));
        let seen: Vec<usize> = seen.into_iter().map(Option::unwrap).collect();
        assert_eq!(seen, [0, 1, 2, 10, 11, 12]);
    }
}
